package supervisor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// killWait bounds how long a process group may take to vanish after
// SIGKILL.
const killWait = 5 * time.Second

// procStat is what kforge needs from /proc/PID/stat.
type procStat struct {
	state byte   // R, S, D, Z, ...
	ppid  int    // parent
	pgrp  int    // process group
	sid   int    // session
	start uint64 // start time in clock ticks since boot
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may hold spaces or ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	st := procStat{state: f[0][0]}
	st.ppid, _ = strconv.Atoi(f[1])
	st.pgrp, _ = strconv.Atoi(f[2])
	st.sid, _ = strconv.Atoi(f[3])
	st.start, _ = strconv.ParseUint(f[19], 10, 64)
	return st, nil
}

// alive reports whether pid is a live (not zombie) process that started at
// ticks; ticks 0 accepts any start time.
func alive(pid int, ticks uint64) bool {
	st, err := readStat(pid)
	return err == nil && st.state != 'Z' && (ticks == 0 || st.start == ticks)
}

// groupAlive reports whether process group pgid has a member that is not a
// zombie. Zombies count as gone: on hosts whose PID 1 does not reap, an
// orphan that died stays a zombie forever.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.pgrp == pgid && st.state != 'Z' {
			return true
		}
	}
	return false
}

// ownedGroup reports whether pgid is still the process group a service
// started at ticks leads: its leader is that very process, or the leader is
// gone and members remain (a pid cannot be reused while it names a group).
func ownedGroup(pgid int, ticks uint64) bool {
	st, err := readStat(pgid)
	if err == nil && st.state != 'Z' {
		return st.pgrp == pgid && st.start == ticks
	}
	return groupAlive(pgid)
}

// endGroup sends SIGTERM (and SIGCONT, for stopped members) to the process
// group, and SIGKILL when any member is left after grace. It reports
// whether SIGKILL was needed and returns once the group is gone or killWait
// after SIGKILL has passed.
func endGroup(pgid int, grace time.Duration) (killed bool) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	_ = syscall.Kill(-pgid, syscall.SIGCONT)
	if waitGroupGone(pgid, grace) {
		return false
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	waitGroupGone(pgid, killWait)
	return true
}

func waitGroupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// proc is a started service process, the leader of its own group.
type proc struct {
	pid     int
	ticks   uint64
	started time.Time
	exit    <-chan syscall.WaitStatus
}

// reaper collects the exit status of every child of the supervisor: the
// services it started and, because it is a child subreaper, any orphan
// from their process trees. Exits of services go to their proc's channel;
// the rest are only reaped, so no zombie is left behind.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
}

func newReaper() *reaper { return &reaper{waiters: map[int]chan syscall.WaitStatus{}} }

// spawn starts s in a new process group with stdin from null and stdout
// and stderr to out.
func (r *reaper) spawn(s Service, null, out *os.File) (*proc, error) {
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	attr := &syscall.ProcAttr{
		Dir:   dir,
		Env:   s.environ(),
		Files: []uintptr{null.Fd(), out.Fd(), out.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	// Holding mu until the pid is registered keeps reap from taking the
	// exit of a process that dies at once for an orphan's.
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(s.Argv[0], s.Argv, attr)
	if err != nil {
		return nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	r.waiters[pid] = ch
	p := &proc{pid: pid, started: time.Now(), exit: ch}
	if st, err := readStat(pid); err == nil {
		p.ticks = st.start
	}
	return p, nil
}

// reap collects every child that has exited.
func (r *reaper) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		ch := r.waiters[pid]
		delete(r.waiters, pid)
		r.mu.Unlock()
		if ch != nil {
			ch <- ws
		}
	}
}

// describe says how a process ended, like os/exec does.
func describe(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "signal: " + ws.Signal().String()
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}

// setSubreaper makes orphans in the services' process trees children of
// the supervisor, which reaps them.
func setSubreaper() error {
	const prSetChildSubreaper = 36
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		return e
	}
	return nil
}
