package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// spawn starts s in a new process group, stdin from /dev/null and output
// to log, and returns its pid and a channel for its exit status.
func (m *manager) spawn(s Service, log io.Writer) (int, <-chan syscall.WaitStatus, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, err
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	defer w.Close()
	// Holding mu until the pid is registered keeps reap from taking the
	// exit of a process that dies at once for an orphan's.
	m.mu.Lock()
	defer m.mu.Unlock()
	pid, err := syscall.ForkExec(s.Argv[0], s.Argv, &syscall.ProcAttr{
		Dir:   "/",
		Env:   s.environ(),
		Files: []uintptr{null.Fd(), w.Fd(), w.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		r.Close()
		return 0, nil, err
	}
	go func() {
		_, _ = io.Copy(log, r)
		r.Close()
	}()
	ch := make(chan syscall.WaitStatus, 1)
	m.exits[pid] = ch
	return pid, ch, nil
}

// reap collects every child that has exited: services, for their channel,
// and the orphans that come to a child subreaper.
func (m *manager) reap() {
	for {
		var ws syscall.WaitStatus
		pid, _ := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil) // it cannot block, nor be interrupted
		if pid <= 0 {
			return
		}
		m.mu.Lock()
		if ch := m.exits[pid]; ch != nil {
			ch <- ws
			delete(m.exits, pid)
		}
		m.mu.Unlock()
	}
}

// procStat is what the supervisor needs from /proc/PID/stat.
type procStat struct {
	state           rune // R, S, D, Z, ...
	ppid, pgrp, sid int
}

func readStat(pid int) (st procStat, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil { // the command name is in parentheses and may hold ')'
		_, err = fmt.Sscanf(string(b[bytes.LastIndexByte(b, ')')+1:]), " %c %d %d %d", &st.state, &st.ppid, &st.pgrp, &st.sid)
	}
	return st, err
}

// gone reports whether pid has exited: no process, or a zombie.
func gone(pid int) bool {
	st, err := readStat(pid)
	return err != nil || st.state == 'Z'
}

// procs lists the processes match selects. Zombies count as gone: on hosts
// whose PID 1 does not reap, an orphan that died stays a zombie forever.
func procs(match func(procStat) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			if st, err := readStat(pid); err == nil && st.state != 'Z' && match(st) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// end sends SIGTERM (and SIGCONT, for stopped ones) to the processes match
// selects, and SIGKILL to those left after grace. It reports whether
// SIGKILL was needed, and returns once they are gone or 5s after SIGKILL.
func end(match func(procStat) bool, grace time.Duration) (killed bool) {
	for _, pid := range procs(match) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	ctx := context.Background()
	gone := func(context.Context) (bool, error) { return len(procs(match)) == 0, nil }
	if wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, grace, true, gone) == nil {
		return false
	}
	_ = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		pids := procs(match)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		return len(pids) == 0, nil
	})
	return true
}

// endSession ends what is left in the session of sid, a supervisor that
// is gone; no other process can take the id while the session has members.
func endSession(sid int, grace time.Duration) {
	if sid > 0 && sid != os.Getpid() && gone(sid) {
		end(func(st procStat) bool { return st.sid == sid }, grace)
	}
}

// describe says how a process ended, like os/exec does.
func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "signal: " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}

// closeInheritedFiles closes the descriptors inherited from whatever
// started the supervisor (a shell's lock file), which it and its services
// would hold for good. Go's own are close-on-exec and stay.
func closeInheritedFiles() {
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		if errno == 0 && flags&syscall.FD_CLOEXEC == 0 {
			syscall.Close(fd)
		}
	}
}
