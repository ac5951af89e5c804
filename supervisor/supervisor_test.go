package supervisor

import (
	"context"
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
// directories, run from the test binary (see TestMain). Cleanup kills
// whatever a test left running.
type fixture struct {
	t                     *testing.T
	h                     *local.Host
	bin, state, logs, dir string
	tracked               map[int]uint64 // pid → start ticks
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, h: local.New(), bin: bin, state: t.TempDir(), logs: t.TempDir(), dir: t.TempDir(), tracked: map[int]uint64{}}
	t.Cleanup(f.cleanup)
	return f
}

func (f *fixture) cleanup() {
	// A panic, or a race under -race, ends up in the supervisor's log.
	if b, _ := os.ReadFile(filepath.Join(f.logs, "supervisor.log")); strings.Contains(string(b), "DATA RACE") || strings.Contains(string(b), "panic:") {
		f.t.Errorf("supervisor.log:\n%s", b)
	}
	if pid, err := readPID(f.state); err == nil && alive(pid, 0) {
		if cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); strings.Contains(string(cmd), f.state) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if r, err := readStatusFile(f.state); err == nil {
		for _, s := range r.Services {
			if s.PID > 0 && s.StartTicks > 0 && ownedGroup(s.PID, s.StartTicks) {
				syscall.Kill(-s.PID, syscall.SIGKILL)
			}
		}
	}
	for pid, ticks := range f.tracked {
		if alive(pid, ticks) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// track remembers pid so that cleanup kills it if it is still the same
// process.
func (f *fixture) track(pid int) {
	if st, err := readStat(pid); err == nil {
		f.tracked[pid] = st.start
	}
}

func (f *fixture) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	f.t.Cleanup(cancel)
	return ctx
}

func (f *fixture) install(s Service) {
	f.t.Helper()
	if err := Install(f.ctx(5*time.Second), f.h, f.state, s); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) start() {
	f.t.Helper()
	if err := Start(f.ctx(40*time.Second), f.h, f.bin, f.state, WithLogDir(f.logs)); err != nil {
		f.t.Fatal(err)
	}
	if pid, err := readPID(f.state); err == nil {
		f.track(pid)
	}
}

// until polls the report until cond holds, failing the test after d.
func (f *fixture) until(what string, d time.Duration, cond func(Report) bool) Report {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		r, err := ReadReport(f.state)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, s := range r.Services {
			if s.PID > 0 {
				f.track(s.PID)
			}
		}
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			r.Write(&b)
			f.t.Fatalf("no %s after %s; status:\n%s", what, d, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running waits until every named service is running and returns their
// pids.
func (f *fixture) running(names ...string) map[string]int {
	f.t.Helper()
	r := f.until("running "+strings.Join(names, ", "), 20*time.Second, func(r Report) bool {
		for _, n := range names {
			if s, ok := r.Service(n); !ok || s.State != StateRunning {
				return false
			}
		}
		return true
	})
	pids := map[string]int{}
	for _, n := range names {
		s, _ := r.Service(n)
		pids[n] = s.PID
	}
	return pids
}

// pidFrom waits for a script to write a pid into dir/name.
func (f *fixture) pidFrom(name string) int {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(f.dir, name))
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			f.track(pid)
			return pid
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("no pid in %s", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fixture) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(f.logs, name+".log"))
	return string(b)
}

func sh(script string, args ...string) []string {
	return append([]string{"/bin/sh", "-c", script, "sh"}, args...)
}

func TestRestartsWithBackoff(t *testing.T) {
	f := newFixture(t)
	starts := filepath.Join(f.dir, "starts")
	f.install(Service{Name: "crashy", Argv: sh(`date +%s%N >> "$1"; echo "crash $$"; exit 3`, starts)})
	f.start()
	var data []byte
	r := f.until("five starts", 20*time.Second, func(r Report) bool {
		data, _ = os.ReadFile(starts)
		return len(strings.Fields(string(data))) >= 5
	})
	if s, _ := r.Service("crashy"); s.Restarts < 4 || s.LastExit != "exit status 3" {
		t.Errorf("after five starts: %d restarts, last exit %q; want 4 or more and exit status 3", s.Restarts, s.LastExit)
	}
	var at []int64
	for _, l := range strings.Fields(string(data)) {
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		at = append(at, n)
	}
	if len(at) < 5 {
		t.Fatalf("%d starts recorded, want at least 5", len(at))
	}
	// Restarts wait 200ms, 400ms, 800ms, 1.6s.
	for i := range 4 {
		gap := time.Duration(at[i+1] - at[i])
		want := backoffInitial << i
		if gap < want*9/10 || gap > want+3*time.Second {
			t.Errorf("restart %d came %v after the start before it, want about %v", i+1, gap, want)
		}
	}
	log := f.log("crashy")
	for _, want := range []string{"crash ", "exited after", "exit status 3", "restarting in 800ms"} {
		if !strings.Contains(log, want) {
			t.Errorf("crashy.log lacks %q:\n%s", want, log)
		}
	}
}

func TestStopEndsWholeProcessGroups(t *testing.T) {
	f := newFixture(t)
	// A grandchild that dies on SIGTERM and one that ignores it.
	script := `sleep 300 & echo $! > "$1/sleeper"
sh -c 'trap "" TERM; echo $$ > "$1/stubborn"; while :; do sleep 0.1; done' sh "$1" &
wait`
	f.install(Service{Name: "tree", Argv: sh(script, f.dir), StopTimeout: time.Second})
	f.install(Service{Name: "plain", Argv: []string{"/bin/sleep", "300"}})
	f.start()
	pids := f.running("tree", "plain")
	sleeper, stubborn := f.pidFrom("sleeper"), f.pidFrom("stubborn")
	for _, pid := range []int{sleeper, stubborn} {
		if st, err := readStat(pid); err != nil || st.pgrp != pids["tree"] {
			t.Fatalf("grandchild %d is not in the service's process group %d: %+v %v", pid, pids["tree"], st, err)
		}
	}
	supervisorPID := f.until("a supervisor", time.Second, func(r Report) bool { return r.Running }).PID

	began := time.Now()
	if err := Stop(f.ctx(30*time.Second), f.h, f.bin, f.state); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	if took < time.Second || took > 15*time.Second {
		t.Errorf("stop took %v; the stubborn grandchild should have needed SIGKILL after 1s", took)
	}
	for what, pid := range map[string]int{"tree": pids["tree"], "plain": pids["plain"], "sleeper": sleeper, "stubborn": stubborn, "supervisor": supervisorPID} {
		if alive(pid, f.tracked[pid]) {
			t.Errorf("%s (pid %d) still runs after stop returned", what, pid)
		}
	}
	if groupAlive(pids["tree"]) {
		t.Errorf("process group %d still has members", pids["tree"])
	}
	r, err := ReadReport(f.state)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Service("tree"); r.Running || s.State != StateStopped || s.PID != 0 {
		t.Errorf("after stop: running %v, tree %+v", r.Running, s)
	}
	if _, err := os.Stat(pidFile(f.state)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left behind: %v", err)
	}
	if log := f.log("tree"); !strings.Contains(log, "sent SIGKILL") {
		t.Errorf("tree.log does not say SIGKILL was sent:\n%s", log)
	}
	if err := Stop(f.ctx(10*time.Second), f.h, f.bin, f.state); err != nil {
		t.Errorf("stopping a stopped supervisor: %v", err)
	}
}

func TestReloadAppliesChanges(t *testing.T) {
	f := newFixture(t)
	keep := Service{Name: "keep", Argv: []string{"/bin/sleep", "300"}}
	argv := Service{Name: "argv", Argv: sh(`echo v1; exec sleep 300`)}
	env := Service{Name: "env", Argv: sh(`echo "A=$A"; exec sleep 300`), Env: map[string]string{"A": "1"}}
	gone := Service{Name: "gone", Argv: sh(`sleep 300 & echo $! > "$1/gone-child"; wait`, f.dir)}
	for _, s := range []Service{keep, argv, env, gone} {
		f.install(s)
	}
	f.start()
	before := f.running("keep", "argv", "env", "gone")
	goneChild := f.pidFrom("gone-child")
	supervisorPID := f.until("a supervisor", time.Second, func(r Report) bool { return r.Running }).PID

	keep.StopTimeout = 5 * time.Second // not a change to the process
	argv.Argv = sh(`echo v2; exec sleep 300`)
	env.Env["A"] = "2"
	for _, s := range []Service{keep, argv, env, {Name: "new", Argv: []string{"/bin/sleep", "300"}}} {
		f.install(s)
	}
	if err := Uninstall(f.ctx(5*time.Second), f.h, f.state, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ServiceFile(f.state, "broken"), []byte("name: broken\nargv: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	f.start() // a running supervisor is reloaded, and Start returns once it has
	// SIGTERM went to the whole group: nothing waited for the 10s SIGKILL.
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the reload took %v", took)
	}

	for _, name := range []string{"argv", "env", "gone"} {
		if pid := before[name]; alive(pid, f.tracked[pid]) {
			t.Errorf("the old %s (pid %d) still runs after the reload", name, pid)
		}
	}
	if alive(goneChild, f.tracked[goneChild]) {
		t.Errorf("the removed service's child %d still runs", goneChild)
	}
	after := f.running("keep", "argv", "env", "new")
	if after["keep"] != before["keep"] {
		t.Errorf("keep was restarted (%d, then %d) though only its stop timeout changed", before["keep"], after["keep"])
	}
	for _, name := range []string{"argv", "env"} {
		if after[name] == before[name] {
			t.Errorf("%s was not restarted", name)
		}
	}
	r := f.until("the reload's result", time.Second, func(Report) bool { return true })
	if r.PID != supervisorPID {
		t.Errorf("supervisor pid %d, then %d", supervisorPID, r.PID)
	}
	if _, ok := r.Service("gone"); ok {
		t.Error("the removed service is still in the status")
	}
	if s, _ := r.Service("broken"); s.State != StateInvalid || !strings.Contains(s.Error, "argv is empty") {
		t.Errorf("broken = %+v", s)
	}
	if s, _ := r.Service("argv"); s.Restarts != 0 {
		t.Errorf("a restart for a changed file counted as a restart: %+v", s)
	}
	f.until("new output", 5*time.Second, func(Report) bool {
		return strings.Contains(f.log("argv"), "v2") && strings.Contains(f.log("env"), "A=2")
	})
}

func TestLockAllowsOneSupervisor(t *testing.T) {
	f := newFixture(t)
	f.install(Service{Name: "one", Argv: []string{"/bin/sleep", "300"}})
	f.start()
	first := f.running("one")
	pid := f.until("a supervisor", time.Second, func(r Report) bool { return r.Running }).PID

	cmd := exec.CommandContext(f.ctx(20*time.Second), f.bin, "supervise", "run", "--state-dir", f.state, "--log-dir", f.logs)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already running") || !strings.Contains(string(out), strconv.Itoa(pid)) {
		t.Errorf("a second supervisor: err %v, output %q", err, out)
	}
	if _, err := acquireLock(f.state); !errors.Is(err, ErrRunning) {
		t.Errorf("taking the lock: %v, want ErrRunning", err)
	}
	if p, err := readPID(f.state); err != nil || p != pid {
		t.Errorf("pid file says %d (%v), want %d", p, err, pid)
	}
	if now := f.running("one"); now["one"] != first["one"] || !alive(pid, f.tracked[pid]) {
		t.Errorf("the first supervisor or its service changed: %v, then %v", first, now)
	}
}

func TestDetachedStartSurvivesItsParent(t *testing.T) {
	f := newFixture(t)
	f.install(Service{Name: "svc", Argv: []string{"/bin/sleep", "300"}})
	// A short-lived "kforge init" that starts the supervisor and exits.
	parent := exec.CommandContext(f.ctx(40*time.Second), f.bin, "test-start", f.state, f.logs)
	parent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	began := time.Now()
	if out, err := parent.CombinedOutput(); err != nil {
		t.Fatalf("starting: %v\n%s", err, out)
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("starting took %v", took)
	}
	syscall.Kill(-parent.Process.Pid, syscall.SIGKILL) // its process group, should anything be left

	r, err := Status(f.ctx(10*time.Second), f.h, f.bin, f.state)
	if err != nil {
		t.Fatal(err)
	}
	f.track(r.PID)
	st, err := readStat(r.PID)
	if !r.Running || err != nil {
		t.Fatalf("status after the parent exited: %+v, %v", r, err)
	}
	if st.sid != r.PID || st.ppid == parent.Process.Pid || st.ppid == os.Getpid() {
		t.Errorf("supervisor %d is not detached: session %d, parent %d", r.PID, st.sid, st.ppid)
	}
	svc := f.running("svc")
	time.Sleep(300 * time.Millisecond)
	if now := f.running("svc"); now["svc"] != svc["svc"] || !alive(r.PID, f.tracked[r.PID]) {
		t.Errorf("supervisor or service did not survive: %v, then %v", svc, now)
	}

	if err := Stop(f.ctx(30*time.Second), f.h, f.bin, f.state); err != nil {
		t.Fatal(err)
	}
	if alive(r.PID, f.tracked[r.PID]) || alive(svc["svc"], f.tracked[svc["svc"]]) {
		t.Error("supervisor or service still runs after stop")
	}
	if r, err := Status(f.ctx(10*time.Second), f.h, f.bin, f.state); err != nil || r.Running {
		t.Errorf("status after stop: %+v, %v", r, err)
	}
}

func TestAfterAndReadyChecks(t *testing.T) {
	f := newFixture(t)
	sock := filepath.Join(f.dir, "db.sock")
	marker := filepath.Join(f.dir, "app-saw")
	f.install(Service{Name: "db", Argv: []string{f.bin, "test-listen", sock, "1500ms"}, Ready: &Ready{Socket: sock}})
	f.install(Service{Name: "app", After: []string{"db"}, Argv: sh(`if [ -S "$1" ]; then echo ready > "$2"; else echo early > "$2"; fi; exec sleep 300`, sock, marker)})
	f.install(Service{Name: "slow", Argv: []string{"/bin/sleep", "300"}, Ready: &Ready{File: filepath.Join(f.dir, "never"), Timeout: 300 * time.Millisecond}})
	f.start()
	if s, _ := f.until("app's status", 2*time.Second, func(Report) bool { return true }).Service("app"); s.State != StateWaiting || len(s.WaitingFor) != 1 {
		t.Errorf("right after start app = %+v, want waiting for db", s)
	}
	if err := Wait(f.ctx(30*time.Second), f.h, f.bin, f.state, "db", "app"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(marker); strings.TrimSpace(string(b)) != "ready" {
		t.Errorf("app started before db was ready: %q", b)
	}
	err := Wait(f.ctx(3*time.Second), f.h, f.bin, f.state, "slow")
	if err == nil || !strings.Contains(err.Error(), "not ready after 300ms") || !strings.Contains(err.Error(), "slow.log") {
		t.Errorf("waiting for a service that never gets ready: %v", err)
	}
}

func TestLeftoversOfAKilledSupervisorAreEnded(t *testing.T) {
	f := newFixture(t)
	f.install(Service{Name: "svc", Argv: []string{"/bin/sleep", "300"}})
	f.start()
	old := f.running("svc")["svc"]
	pid := f.until("a supervisor", time.Second, func(r Report) bool { return r.Running }).PID
	syscall.Kill(pid, syscall.SIGKILL)
	f.until("the supervisor gone", 10*time.Second, func(r Report) bool { return !r.Running })
	if !alive(old, f.tracked[old]) {
		t.Fatal("the service died with the supervisor; nothing left to test")
	}
	f.start()
	now := f.running("svc")["svc"]
	if now == old || alive(old, f.tracked[old]) {
		t.Errorf("the new supervisor left the old service %d running (new %d)", old, now)
	}
}

// A descriptor the supervisor inherits (a shell's lock file) is closed, so
// neither it nor its services hold the lock.
func TestServicesDoNotInheritDescriptors(t *testing.T) {
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
