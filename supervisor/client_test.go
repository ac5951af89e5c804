package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/host/fake"
)

const (
	kf    = "/var/lib/kforge/bin/kforge"
	state = "/var/lib/kforge/supervisor"
)

func TestInstall(t *testing.T) {
	ctx := context.Background()
	h := fake.New("node1")
	s := Service{Name: "kubelet", Argv: []string{"/usr/bin/kubelet", "--v=2"}, Env: map[string]string{"KFORGE_CONFIG_SHA256": "ab"},
		After: []string{"containerd"}, Ready: &Ready{Socket: "/run/k.sock"}}
	if err := Install(ctx, h, state, s); err != nil {
		t.Fatal(err)
	}
	f, ok := h.Files()[state+"/services/kubelet.yaml"]
	var got Service
	if !ok || f.Mode != 0o644 || yaml.Unmarshal(f.Data, &got) != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("installed %v:\n%s", h.Paths(), f.Data)
	}
	if err := Uninstall(ctx, h, state, "kubelet"); err != nil || len(h.Paths()) != 0 {
		t.Errorf("uninstall left %v, %v", h.Paths(), err)
	}
}

func TestLoadServices(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"ok.yaml":      "name: ok\nargv: [/bin/true]\nafter: [missing]\n",
		"renamed.yaml": "name: other\nargv: [/bin/true]\n",
		"broken.yaml":  "name: [\n",
		"notes.txt":    "name: notes\nargv: [/bin/true]\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good, bad := loadServices(dir)
	if len(good) != 1 || good["ok"].After[0] != "missing" {
		t.Errorf("good = %v", good)
	}
	msg := errors.Join(bad...).Error()
	for _, want := range []string{"renamed.yaml: its name field differs from the file name", "broken.yaml: yaml"} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
	if len(bad) != 2 {
		t.Errorf("bad = %v", bad)
	}
}

func TestStartLaunchesOrReloads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10500*time.Millisecond)
	defer cancel()
	launch := []string{
		host.ShellQuote([]string{"setsid", "-f", "sh", "-c", launchScript, "sh", "/var/log/k", kf, "supervise", "run", "--state-dir", state, "--log-dir", "/var/log/k"}),
		kf + " supervise wait --state-dir " + state + " --log-dir /var/log/k --timeout 10s",
	}
	reload := kf + " supervise reload --state-dir " + state + " --timeout 10s"
	for name, tc := range map[string]struct {
		lockFile bool
		reload   fake.Answer
		want     []string
	}{
		"no pid file":      {want: launch},
		"running":          {lockFile: true, want: []string{reload}},
		"killed":           {lockFile: true, reload: fake.Answer{Stderr: "error: supervisor not running (state x)", ExitCode: 1}, want: append([]string{reload}, launch...)},
		"failed to reload": {lockFile: true, reload: fake.Answer{Stderr: "error: boom", ExitCode: 1}, want: []string{reload}},
	} {
		h := fake.New("node1")
		if tc.lockFile {
			h.WriteFile(ctx, state+"/supervisor.lock", nil, 0o644)
		}
		h.On(fake.Answer{})
		h.On(tc.reload, kf, "supervise", "reload")
		err := Start(ctx, h, kf, state, WithLogDir("/var/log/k"))
		if (err != nil) != (tc.reload.Stderr == "error: boom") || err != nil && !strings.Contains(err.Error(), "supervise reload") {
			t.Errorf("%s: %v", name, err)
		}
		if got := h.Calls(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: calls:\n%s\nwant:\n%s", name, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

func TestStopAndWaitRunOnTheHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10500*time.Millisecond)
	defer cancel()
	h := fake.New("node1")
	h.On(fake.Answer{})
	if err := Stop(ctx, h, kf, state); err != nil {
		t.Fatal(err)
	}
	if err := Wait(ctx, h, kf, state, "containerd", "kubelet"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		kf + " supervise stop --state-dir " + state + " --timeout 10s",
		kf + " supervise wait --state-dir " + state + " --timeout 10s --service containerd --service kubelet",
	}
	if got := h.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	failing := fake.New("node3")
	failing.On(fake.Answer{Stderr: "permission denied", ExitCode: 1})
	if err := Stop(ctx, failing, kf, state); err == nil || !strings.Contains(err.Error(), "supervise stop") || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("failed stop: err = %v", err)
	}
}

func TestLogFileCapsItsSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svc.log")
	l := &logFile{path: path, max: 100}
	line := []byte(strings.Repeat("x", 39) + "\n") // 40 bytes
	for range 5 {
		if n, err := l.Write(line); n != len(line) || err != nil {
			t.Fatalf("write: %d, %v", n, err)
		}
	}
	// 40+40 fit; the third write would pass 100 and starts a new log, and
	// so on.
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if len(cur) != 40 || len(old) != 80 {
		t.Errorf("log is %d bytes and log.1 %d, want 40 and 80", len(cur), len(old))
	}
	os.Remove(path)
	if n, err := l.Write(line); n != len(line) || err != nil {
		t.Errorf("a removed log is begun again: %d, %v", n, err)
	}
}

// A descriptor the supervisor inherits (a shell's lock file) is closed, so
// neither it nor its services hold the lock.
func TestInheritedDescriptorsAreClosed(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "lock")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, 0) // inheritable, as a shell's `exec 8>file`
	closeInheritedFiles()
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0); errno != syscall.EBADF {
		t.Fatalf("inherited fd %d is still open (fcntl: %v)", fd, errno)
	}
}
