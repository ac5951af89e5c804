package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"kforge.dev/kforge/providers/local"
)

// fixture is one supervisor with its own state, log and scratch
// directories, run from the test binary (see TestMain). Cleanup kills the
// session of whatever supervisor a test left running.
type fixture struct {
	t                     *testing.T
	h                     *local.Host
	bin, state, logs, dir string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, h: local.New(), bin: bin, state: t.TempDir(), logs: t.TempDir(), dir: t.TempDir()}
	t.Cleanup(func() {
		if b, _ := os.ReadFile(filepath.Join(f.logs, "supervisor.log")); strings.Contains(string(b), "DATA RACE") || strings.Contains(string(b), "panic:") {
			t.Errorf("supervisor.log:\n%s", b)
		}
		if pid := readStatusFile(f.state).PID; pid > 1 {
			end(func(st procStat) bool { return st.sid == pid }, 0)
		}
	})
	return f
}

func (f *fixture) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	f.t.Cleanup(cancel)
	return ctx
}

func (f *fixture) install(ss ...Service) {
	f.t.Helper()
	for _, s := range ss {
		if err := Install(f.ctx(5*time.Second), f.h, f.state, s); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) start() {
	f.t.Helper()
	if err := Start(f.ctx(40*time.Second), f.h, f.bin, f.state, WithLogDir(f.logs)); err != nil {
		f.t.Fatal(err)
	}
}

// until polls the status until cond holds, failing the test after d.
func (f *fixture) until(what string, d time.Duration, cond func(Status) bool) Status {
	f.t.Helper()
	var st Status
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if st = ReadStatus(f.state); cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			js, _ := json.Marshal(st)
			f.t.Fatalf("waited %s for %s; status: %s", d, what, js)
		}
	}
}

// running waits until every named service is running and returns their
// pids and the supervisor's.
func (f *fixture) running(names ...string) (pids map[string]int, supervisor int) {
	f.t.Helper()
	st := f.until(strings.Join(names, ", ")+" to run", 20*time.Second, func(st Status) bool {
		for _, n := range names {
			if s := st.Services[n]; s == nil || s.State != StateRunning {
				return false
			}
		}
		return st.Running
	})
	pids = map[string]int{}
	for _, n := range names {
		pids[n] = st.Services[n].PID
	}
	return pids, st.PID
}

// pidFrom waits for a script to write a pid into dir/name.
func (f *fixture) pidFrom(name string) int {
	f.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(f.dir, name))
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return pid
		}
	}
	f.t.Fatalf("no pid in %s", name)
	return 0
}

func (f *fixture) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(f.logs, name+".log"))
	return string(b)
}

func alive(pid int) bool { return pid > 0 && !gone(pid) }

func sh(script string, args ...string) []string {
	return append([]string{"/bin/sh", "-c", script, "sh"}, args...)
}

func TestRestartsWithBackoff(t *testing.T) {
	f := newFixture(t)
	starts := filepath.Join(f.dir, "starts")
	f.install(Service{Name: "crashy", Argv: sh(`date +%s%N >> "$1"; echo "crash $$"; exit 3`, starts)})
	f.start()
	var at []int64
	st := f.until("five starts", 20*time.Second, func(Status) bool {
		data, _ := os.ReadFile(starts)
		at = at[:0]
		for _, l := range strings.Fields(string(data)) {
			n, _ := strconv.ParseInt(l, 10, 64)
			at = append(at, n)
		}
		return len(at) >= 5
	})
	if s := st.Services["crashy"]; s.Restarts < 4 || s.LastExit != "exit status 3" {
		t.Errorf("after five starts: %+v; want 4 restarts or more and exit status 3", s)
	}
	// Restarts wait 200ms, 400ms, 800ms, 1.6s.
	for i := range 4 {
		gap, want := time.Duration(at[i+1]-at[i]), 200*time.Millisecond<<i
		if gap < want*9/10 || gap > want+3*time.Second {
			t.Errorf("restart %d came %v after the start before it, want about %v", i+1, gap, want)
		}
	}
	for _, want := range []string{"crash ", "exit status 3", "restarting in 800ms"} {
		if log := f.log("crashy"); !strings.Contains(log, want) {
			t.Errorf("crashy.log lacks %q:\n%s", want, log)
		}
	}
}

// TestPeriodicJob: a job runs once every period, the first time a period
// after it loads, and a failed run does not stop the next; between runs it
// is scheduled, which WaitRunning accepts.
func TestPeriodicJob(t *testing.T) {
	f := newFixture(t)
	runs := filepath.Join(f.dir, "runs")
	f.install(Service{Name: "job", Argv: sh(`date +%s%N >> "$1"; exit 1`, runs), Every: 400 * time.Millisecond})
	loaded := time.Now()
	f.start()
	if err := WaitRunning(f.ctx(10*time.Second), f.state, f.logs, []string{"job"}); err != nil {
		t.Fatal(err)
	}
	var at []int64
	st := f.until("three runs", 20*time.Second, func(Status) bool {
		data, _ := os.ReadFile(runs)
		at = at[:0]
		for _, l := range strings.Fields(string(data)) {
			n, _ := strconv.ParseInt(l, 10, 64)
			at = append(at, n)
		}
		return len(at) >= 3
	})
	if first := time.Unix(0, at[0]).Sub(loaded); first < 400*time.Millisecond {
		t.Errorf("the first run came %v after the start, want a period (400ms) or more", first)
	}
	for i := range 2 {
		if gap := time.Duration(at[i+1] - at[i]); gap < 400*time.Millisecond || gap > 5*time.Second {
			t.Errorf("run %d came %v after the one before, want about 400ms", i+2, gap)
		}
	}
	if s := st.Services["job"]; s.Restarts != 0 {
		t.Errorf("a periodic job counts restarts: %+v", s)
	}
	f.until("the job scheduled again, its last exit recorded", 10*time.Second, func(st Status) bool {
		s := st.Services["job"]
		return s != nil && s.State == StateScheduled && s.LastExit == "exit status 1"
	})
	if log := f.log("job"); !strings.Contains(log, "next run in 400ms") {
		t.Errorf("job.log:\n%s", log)
	}
}

func TestReloadRestartsOnlyChangedServices(t *testing.T) {
	f := newFixture(t)
	env := map[string]string{"KFORGE_CONFIG_SHA256": "1"}
	keep := Service{Name: "keep", Argv: []string{"/bin/sleep", "300"}, Env: env}
	argv := Service{Name: "argv", Argv: sh(`echo v1; exec sleep 300`)}
	conf := Service{Name: "conf", Argv: sh(`echo "sum=$KFORGE_CONFIG_SHA256"; exec sleep 300`), Env: env}
	gone := Service{Name: "gone", Argv: sh(`sleep 300 & echo $! > "$1/gone-child"; wait`, f.dir)}
	f.install(keep, argv, conf, gone)
	f.start()
	before, supervisor := f.running("keep", "argv", "conf", "gone")
	goneChild := f.pidFrom("gone-child")

	// The same files again: a second `kforge up` on a healthy node.
	f.install(keep, argv, conf, gone)
	f.start()
	if again, pid := f.running("keep", "argv", "conf", "gone"); !equal(again, before) || pid != supervisor {
		t.Fatalf("unchanged services were restarted: %v, then %v", before, again)
	}

	keep.After = []string{"conf"} // not a change to the process
	argv.Argv = sh(`echo v2; exec sleep 300`)
	conf.Env = map[string]string{"KFORGE_CONFIG_SHA256": "2"}
	f.install(keep, argv, conf, Service{Name: "new", Argv: []string{"/bin/sleep", "300"}})
	if err := Uninstall(f.ctx(5*time.Second), f.h, f.state, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ServiceFile(f.state, "broken"), []byte("name: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.start() // a running supervisor is reloaded, and Start returns once it has
	for _, pid := range []int{before["argv"], before["conf"], before["gone"], goneChild} {
		if alive(pid) {
			t.Errorf("pid %d of a changed or removed service still runs after the reload", pid)
		}
	}
	after, pid := f.running("keep", "argv", "conf", "new")
	if after["keep"] != before["keep"] || pid != supervisor {
		t.Errorf("keep was restarted (%d, then %d) though only its after changed", before["keep"], after["keep"])
	}
	if after["argv"] == before["argv"] || after["conf"] == before["conf"] {
		t.Errorf("changed argv or env did not restart: %v, then %v", before, after)
	}
	if st := ReadStatus(f.state); st.Services["gone"] != nil || st.Services["broken"] != nil {
		t.Errorf("a removed or invalid service is in the status: %+v", st.Services)
	}
	err := WaitRunning(f.ctx(500*time.Millisecond), f.state, f.logs, []string{"broken"})
	if err == nil || !strings.Contains(err.Error(), "service broken is not installed") || !strings.Contains(err.Error(), "broken.yaml: yaml:") {
		t.Errorf("waiting for an invalid service: %v", err)
	}
	f.until("new output", 5*time.Second, func(Status) bool {
		return strings.Contains(f.log("argv"), "v2") && strings.Contains(f.log("conf"), "sum=2")
	})
}

func equal(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

func TestAfterWaitsForTheSocket(t *testing.T) {
	f := newFixture(t)
	sock := filepath.Join(f.dir, "containerd.sock")
	saw := filepath.Join(f.dir, "kubelet-saw")
	f.install(Service{Name: "containerd", Argv: []string{f.bin, "test-listen", sock, "1500ms"}, Ready: &Ready{Socket: sock}},
		Service{Name: "kubelet", After: []string{"containerd"}, Argv: sh(`[ -S "$1" ] && echo ready > "$2" || echo early > "$2"; exec sleep 300`, sock, saw)})
	f.start()
	if s := f.until("the kubelet's status", time.Second, func(st Status) bool { return st.Services["kubelet"] != nil }).Services["kubelet"]; s.State != StateWaiting {
		t.Errorf("right after start the kubelet is %+v, want waiting", s)
	}
	err := WaitRunning(f.ctx(500*time.Millisecond), f.state, f.logs, []string{"kubelet"})
	if err == nil || !strings.Contains(err.Error(), "service kubelet is waiting for containerd") {
		t.Errorf("waiting for a kubelet whose containerd is not ready: %v", err)
	}
	if err := Wait(f.ctx(30*time.Second), f.h, f.bin, f.state, "kubelet"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(saw); strings.TrimSpace(string(b)) != "ready" {
		t.Errorf("the kubelet started before containerd's socket answered: %q", b)
	}
}

func TestStopEndsWholeProcessGroupsKubeletFirst(t *testing.T) {
	f := newFixture(t)
	order := filepath.Join(f.dir, "order")
	// A grandchild that dies on SIGTERM and one that ignores it.
	tree := `trap 'echo containerd >> "$1/order"; exit 0' TERM
sleep 300 & echo $! > "$1/sleeper"
sh -c 'trap "" TERM; echo $$ > "$1/stubborn"; while :; do sleep 0.1; done' sh "$1" &
while :; do sleep 0.1; done`
	f.install(Service{Name: "containerd", Argv: sh(tree, f.dir)},
		Service{Name: "kubelet", After: []string{"containerd"}, Argv: sh(`trap 'sleep 0.3; echo kubelet >> "$1"; exit 0' TERM; while :; do sleep 0.1; done`, order)})
	f.start()
	pids, supervisor := f.running("containerd", "kubelet")
	sleeper, stubborn := f.pidFrom("sleeper"), f.pidFrom("stubborn")
	if st, err := readStat(stubborn); err != nil || st.pgrp != pids["containerd"] {
		t.Fatalf("grandchild %d is not in the service's process group %d: %+v %v", stubborn, pids["containerd"], st, err)
	}
	began := time.Now()
	if err := Stop(f.ctx(30*time.Second), f.h, f.bin, f.state); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < time.Second || took > 15*time.Second {
		t.Errorf("stop took %v; the stubborn grandchild should have needed SIGKILL after 1s", took)
	}
	for _, pid := range []int{pids["containerd"], pids["kubelet"], sleeper, stubborn, supervisor} {
		if alive(pid) {
			t.Errorf("pid %d still runs after stop returned", pid)
		}
	}
	if b, _ := os.ReadFile(order); string(b) != "kubelet\ncontainerd\n" {
		t.Errorf("services stopped in the order %q, want the kubelet first", b)
	}
	if st := ReadStatus(f.state); st.Running || st.Services["containerd"].State != StateStopped {
		t.Errorf("after stop: %+v", st)
	}
	if log := f.log("containerd"); !strings.Contains(log, "sent SIGKILL") {
		t.Errorf("containerd.log does not say SIGKILL was sent:\n%s", log)
	}
	if err := Stop(f.ctx(10*time.Second), f.h, f.bin, f.state); err != nil {
		t.Errorf("stopping a stopped supervisor: %v", err)
	}
	f.start() // the pid file is there, but nobody holds it
	if again, _ := f.running("containerd", "kubelet"); again["kubelet"] == pids["kubelet"] {
		t.Errorf("no new kubelet after a start: %v", again)
	}
}

// An orphan of a service comes to the supervisor, a child subreaper, which
// reaps it: no zombie is left behind.
func TestOrphansAreReaped(t *testing.T) {
	f := newFixture(t)
	f.install(Service{Name: "forker", Argv: sh(`sh -c 'sleep 0.5 & echo $! > "$1/orphan"' sh "$1"; exec sleep 300`, f.dir)})
	f.start()
	_, supervisor := f.running("forker")
	orphan := f.pidFrom("orphan")
	if st, err := readStat(orphan); err == nil && st.ppid != supervisor {
		t.Errorf("the orphan's parent is %d, not the supervisor %d", st.ppid, supervisor)
	}
	f.until("the orphan to be reaped", 10*time.Second, func(Status) bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(orphan))
		return errors.Is(err, os.ErrNotExist)
	})
}

func TestDetachedStartSurvivesItsParent(t *testing.T) {
	f := newFixture(t)
	f.install(Service{Name: "svc", Argv: []string{"/bin/sleep", "300"}})
	// A short-lived "kforge init" that starts the supervisor and exits.
	parent := exec.CommandContext(f.ctx(40*time.Second), f.bin, "test-start", f.state, f.logs)
	parent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if out, err := parent.CombinedOutput(); err != nil {
		t.Fatalf("starting: %v\n%s", err, out)
	}
	syscall.Kill(-parent.Process.Pid, syscall.SIGKILL) // its process group, should anything be left
	svc, supervisor := f.running("svc")
	if st, err := readStat(supervisor); err != nil || st.sid != supervisor || st.ppid == parent.Process.Pid || st.ppid == os.Getpid() {
		t.Errorf("supervisor %d is not detached: %+v, %v", supervisor, st, err)
	}
	time.Sleep(300 * time.Millisecond)
	if now, pid := f.running("svc"); now["svc"] != svc["svc"] || pid != supervisor {
		t.Errorf("supervisor or service did not survive: %v, then %v", svc, now)
	}
	second := exec.CommandContext(f.ctx(20*time.Second), f.bin, "supervise", "run", "--state-dir", f.state, "--log-dir", f.logs)
	if out, err := second.CombinedOutput(); err == nil || !strings.Contains(string(out), "already running: pid "+strconv.Itoa(supervisor)) {
		t.Errorf("a second supervisor: %v, %s", err, out)
	}
}

// The services of a supervisor that was killed outlive it; the next
// supervisor, or a stop, ends them.
func TestLeftoversOfAKilledSupervisorAreEnded(t *testing.T) {
	f := newFixture(t)
	f.install(Service{Name: "svc", Argv: []string{"/bin/sleep", "300"}})
	for _, next := range []string{"start", "stop"} {
		f.start()
		pids, supervisor := f.running("svc")
		syscall.Kill(supervisor, syscall.SIGKILL)
		f.until("the supervisor to go", 10*time.Second, func(st Status) bool { return !st.Running })
		if !alive(pids["svc"]) {
			t.Fatal("the service died with the supervisor; nothing left to test")
		}
		if next == "start" {
			f.start()
			if now, _ := f.running("svc"); now["svc"] == pids["svc"] {
				t.Errorf("the new supervisor took the old service %d for its own", pids["svc"])
			}
		} else if err := Stop(f.ctx(30*time.Second), f.h, f.bin, f.state); err != nil {
			t.Fatal(err)
		}
		if alive(pids["svc"]) {
			t.Errorf("after a %s the killed supervisor's service %d still runs", next, pids["svc"])
		}
	}
}
