package supervisor

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseServiceRoundTrip(t *testing.T) {
	s := Service{
		Name:        "kubelet",
		Argv:        []string{"/usr/local/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"},
		Env:         map[string]string{"HOME": "/root", "B": "x y"},
		Dir:         "/var/lib/kubelet",
		After:       []string{"containerd"},
		Ready:       &Ready{Socket: "/run/containerd/containerd.sock", Timeout: 90 * time.Second},
		StopTimeout: 30 * time.Second,
	}
	data, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "timeout: 1m30s") {
		t.Errorf("durations should be written as strings:\n%s", data)
	}
	got, err := ParseService(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, s)
	}
	if env := got.environ(); !reflect.DeepEqual(env, []string{"PATH=" + defaultPath, "B=x y", "HOME=/root"}) {
		t.Errorf("environ = %q", env)
	}
}

func TestParseServiceRejects(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown field":     {"name: a\nargv: [/bin/true]\nrestart: always\n", "field restart not found"},
		"empty":             {"", "empty service file"},
		"two documents":     {"name: a\nargv: [/bin/true]\n---\nname: b\n", "more than one YAML document"},
		"relative argv":     {"name: a\nargv: [true]\n", `argv[0] "true" is not an absolute path`},
		"no argv":           {"name: a\n", "argv is empty"},
		"bad name":          {"name: A/b\nargv: [/bin/true]\n", `name "A/b"`},
		"reserved name":     {"name: supervisor\nargv: [/bin/true]\n", `name "supervisor"`},
		"after itself":      {"name: a\nargv: [/bin/true]\nafter: [a]\n", "cannot be after itself"},
		"both ready checks": {"name: a\nargv: [/bin/true]\nready: {socket: /a, file: /b}\n", "exactly one of socket and file"},
		"relative ready":    {"name: a\nargv: [/bin/true]\nready: {file: x}\n", `ready: "x" is not an absolute path`},
		"integer duration":  {"name: a\nargv: [/bin/true]\nstopTimeout: 10\n", "into time.Duration"},
		"env name with =":   {"name: a\nargv: [/bin/true]\nenv: {'A=B': c}\n", `env "A=B"`},
		"relative dir":      {"name: a\nargv: [/bin/true]\ndir: tmp\n", `dir "tmp"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseService([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadServices(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, "services")
	write := func(name, data string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ok.yaml", "name: ok\nargv: [/bin/true]\nafter: [missing]\n")
	write("renamed.yaml", "name: other\nargv: [/bin/true]\n")
	write("broken.yaml", "name: [\n")
	write("x.yaml", "name: x\nargv: [/bin/true]\nafter: [y]\n")
	write("y.yaml", "name: y\nargv: [/bin/true]\nafter: [x]\n")
	write("z.yaml", "name: z\nargv: [/bin/true]\nafter: [x]\n")
	write(".ok.yaml.tmp123", "garbage")
	write("notes.txt", "garbage")

	good, bad, err := loadServices(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 2 || good["ok"].Name != "ok" || good["z"].Name != "z" {
		t.Errorf("good = %v, want ok and z (a missing or invalid dependency only makes it wait)", good)
	}
	for name, want := range map[string]string{
		"renamed": `name "other" does not match the file name`,
		"broken":  "broken.yaml",
		"x":       "form a cycle",
		"y":       "form a cycle",
	} {
		if err := bad[name]; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad[%s] = %v, want %q", name, err, want)
		}
	}
	if len(bad) != 4 {
		t.Errorf("bad = %v", bad)
	}

	if good, bad, err := loadServices(filepath.Join(state, "none")); err != nil || len(good)+len(bad) != 0 {
		t.Errorf("a missing directory should mean no services: %v %v %v", good, bad, err)
	}
}

func TestBackoff(t *testing.T) {
	var b backoff
	var got []time.Duration
	for range 8 {
		got = append(got, b.after(time.Second))
	}
	want := []time.Duration{200, 400, 800, 1600, 3200, 6400, 10000, 10000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("delays = %v, want %v", got, want)
	}
	if d := b.after(30 * time.Second); d != 200*time.Millisecond {
		t.Errorf("after a 30s run the delay = %v, want 200ms", d)
	}
	if d := b.after(29 * time.Second); d != 400*time.Millisecond {
		t.Errorf("after a short run the delay = %v, want 400ms", d)
	}
}

func TestLogFileRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svc.log")
	l := &logFile{path: path, max: 100}
	line := strings.Repeat("x", 39) + "\n" // 40 bytes
	for i := range 5 {
		if _, err := l.Write([]byte(line)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	l.Close()
	// 40+40 fit; the third write would pass 100 and rotates, and so on.
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if len(cur) != 40 || len(old) != 80 {
		t.Errorf("log is %d bytes and log.1 %d, want 40 and 80", len(cur), len(old))
	}
	// A reopened log appends to what is there.
	l.Write([]byte(line))
	l.Close()
	if cur, _ := os.ReadFile(path); len(cur) != 80 {
		t.Errorf("after reopening the log is %d bytes, want 80", len(cur))
	}
}

func TestReportWrite(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	r := Report{Running: true, PID: 42, StartedAt: at, Services: []ServiceStatus{
		{Name: "containerd", State: StateRunning, PID: 100, Restarts: 0},
		{Name: "kubelet", State: StateBackoff, Restarts: 3, LastExit: "exit status 1", LastExitAt: at},
		{Name: "broken", State: StateInvalid, Error: "services/broken.yaml: argv is empty"},
		{Name: "web", State: StateWaiting, WaitingFor: []string{"kubelet"}},
	}}
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"supervisor: running, pid 42, since 2026-01-02 03:04:05",
		"containerd  running  100",
		"kubelet     backoff  -    3         exit status 1 at 2026-01-02 03:04:05",
		"broken: services/broken.yaml: argv is empty",
		"web: waiting for [kubelet]",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestReadReportIgnoresAPredecessorsStatus(t *testing.T) {
	dir := t.TempDir()
	old := `{"running": true, "pid": 1, "loadedAt": "2026-01-02T03:04:05Z", "services": [{"name": "svc", "state": "running", "pid": 5}]}`
	if err := os.WriteFile(statusFile(dir), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := ReadReport(dir); err != nil || r.Running || len(r.Services) != 1 {
		t.Errorf("with no supervisor the last status is reported as not running: %+v, %v", r, err)
	}
	// A new supervisor (this process) holds the lock and has written its
	// pid, but not yet its status.
	lock, err := acquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := os.WriteFile(pidFile(dir), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ReadReport(dir)
	if err != nil || !r.Running || r.PID != os.Getpid() || !r.LoadedAt.IsZero() || len(r.Services) != 0 {
		t.Errorf("a predecessor's status was taken for the new supervisor's: %+v, %v", r, err)
	}
}
