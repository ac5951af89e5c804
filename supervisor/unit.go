package supervisor

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"kforge.dev/kforge/host"
)

// restartBackoff is the delay before each restart: 200ms, doubling up to
// 10s, and 200ms again after a run of 30s.
func restartBackoff() wait.Backoff {
	return wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Cap: 10 * time.Second, Steps: math.MaxInt32}
}

// unit keeps one service running in a goroutine of its own until cancel is
// called; done is closed once the service's process group is gone.
type unit struct {
	m      *manager
	name   string
	spec   atomic.Pointer[Service] // a new after or ready applies at once
	log    *logFile
	cancel context.CancelFunc
	done   chan struct{}
}

func (u *unit) run(ctx context.Context) {
	defer close(u.done)
	if u.spec.Load().Every > 0 {
		u.periodic(ctx)
		return
	}
	b := restartBackoff()
	for ctx.Err() == nil {
		if wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
			return u.m.running(u.spec.Load().After), nil
		}) != nil {
			break
		}
		began := time.Now()
		exit := u.once(ctx)
		if ctx.Err() != nil {
			break
		}
		if time.Since(began) >= 30*time.Second {
			b = restartBackoff()
		}
		delay := b.Step()
		u.notef("restarting in %s", delay)
		u.m.update(u.name, func(st *ServiceStatus) {
			st.State, st.PID, st.LastExit = StateBackoff, 0, exit
			st.Restarts++
		})
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
	u.m.update(u.name, func(st *ServiceStatus) { st.State, st.PID = StateStopped, 0 })
}

// periodic runs a job once every period until ctx ends, each run to its
// exit; a failed run is logged and the job runs again next period.
func (u *unit) periodic(ctx context.Context) {
	for {
		every := u.spec.Load().Every
		u.m.update(u.name, func(st *ServiceStatus) { st.State, st.PID = StateScheduled, 0 })
		u.notef("next run in %s", every)
		select {
		case <-ctx.Done():
			u.m.update(u.name, func(st *ServiceStatus) { st.State, st.PID = StateStopped, 0 })
			return
		case <-time.After(every):
		}
		exit := u.once(ctx)
		u.m.update(u.name, func(st *ServiceStatus) { st.LastExit = exit })
	}
}

// once starts the service and follows it until it exits, and returns how,
// or until ctx ends.
func (u *unit) once(ctx context.Context) string {
	s := u.spec.Load()
	pid, exit, err := u.m.spawn(*s, u.log)
	if err != nil {
		u.notef("cannot start %s: %v", host.ShellQuote(s.Argv), err)
		return "start failed: " + err.Error()
	}
	u.notef("started pid %d: %s", pid, host.ShellQuote(s.Argv))
	u.m.update(u.name, func(st *ServiceStatus) { st.State, st.PID = StateStarting, pid })
	ready := make(chan struct{})
	if s.Ready == nil {
		close(ready)
	} else {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			if wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
				c, err := net.DialTimeout("unix", s.Ready.Socket, time.Second)
				if err == nil {
					c.Close()
				}
				return err == nil, nil
			}) == nil {
				close(ready)
			}
		}()
	}
	for {
		select {
		case <-ready:
			ready = nil
			u.m.update(u.name, func(st *ServiceStatus) { st.State = StateRunning })
		case ws := <-exit:
			u.notef("pid %d exited: %s", pid, describe(ws))
			u.endGroup(pid) // what it left in its process group
			return describe(ws)
		case <-ctx.Done():
			u.endGroup(pid) // the reaper collects its exit status
			u.notef("pid %d stopped", pid)
			return ""
		}
	}
}

// endGroup ends the process group a service leads: SIGTERM, then SIGKILL
// for what is left after the stop timeout.
func (u *unit) endGroup(pgid int) {
	if end(func(st procStat) bool { return st.pgrp == pgid }, u.m.cfg.StopTimeout) {
		u.notef("process group %d still ran %s after SIGTERM: sent SIGKILL", pgid, u.m.cfg.StopTimeout)
	}
}

// notef writes a line of the supervisor's own to the service's log.
func (u *unit) notef(format string, args ...any) {
	fmt.Fprintf(u.log, "%s kforge supervisor: %s\n", time.Now().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

// logFile is a service's log, opened for each write so that nothing holds
// a file a reset removed; past max bytes it becomes path.1 and begins
// anew. Writes never fail: a service must never block on its output.
type logFile struct {
	path string
	max  int64
	mu   sync.Mutex
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st, err := os.Stat(l.path); err == nil && st.Size() > 0 && st.Size()+int64(len(p)) > l.max {
		_ = os.Rename(l.path, l.path+".1")
	}
	if f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); err == nil {
		_, _ = f.Write(p)
		f.Close()
	}
	return len(p), nil
}
