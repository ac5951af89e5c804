package supervisor

import (
	"context"
	"io"
	"net"
	"os"
	"time"

	"kforge.dev/kforge/host"
)

// Restart backoff: the first restart comes after backoffInitial, each
// further one waits twice as long up to backoffMax, and a run that lasted
// backoffReset starts the sequence again.
const (
	backoffInitial = 200 * time.Millisecond
	backoffMax     = 10 * time.Second
	backoffReset   = 30 * time.Second
)

// backoff is the delay before the next restart.
type backoff struct{ next time.Duration }

// after returns the delay before restarting a service that ran for ran.
func (b *backoff) after(ran time.Duration) time.Duration {
	if b.next == 0 || ran >= backoffReset {
		b.next = backoffInitial
	}
	d := b.next
	b.next = min(2*b.next, backoffMax)
	return d
}

// unit keeps one service running. Its goroutine owns spec and the running
// process; the manager talks to it through reqs and quit.
type unit struct {
	m    *manager
	name string
	log  *logFile
	reqs chan request
	quit chan struct{}
	done chan struct{}

	spec Service
}

// request hands a unit a new version of its service file; done is closed
// once it has been applied (a changed process stopped).
type request struct {
	spec Service
	done chan struct{}
}

// update gives the unit a new spec and waits until it has been applied.
func (u *unit) update(s Service) {
	r := request{spec: s, done: make(chan struct{})}
	select {
	case u.reqs <- r:
		<-r.done
	case <-u.done:
	}
}

// stop ends the service and waits for its goroutine.
func (u *unit) stop() {
	close(u.quit)
	<-u.done
}

// apply takes a new spec and reports whether the process must restart.
func (u *unit) apply(r request) (restart bool) {
	restart = !sameProcess(u.spec, r.spec)
	u.spec = r.spec
	return restart
}

func (u *unit) set(f func(*ServiceStatus)) { u.m.setStatus(u.name, f) }

func (u *unit) run() {
	defer close(u.done)
	defer u.set(func(st *ServiceStatus) {
		st.State, st.Since, st.PID, st.StartTicks, st.WaitingFor = StateStopped, time.Now(), 0, 0, nil
	})
	var b backoff
	var delay time.Duration
	for {
		if delay > 0 {
			u.set(func(st *ServiceStatus) { st.State, st.Since = StateBackoff, time.Now() })
			switch u.sleep(delay) {
			case quitNow:
				return
			case restartNow:
				delay, b = 0, backoff{}
			}
		}
		if !u.waitAfter() {
			return
		}
		// A start after a failure is a restart; one for a changed
		// service file is not.
		if delay > 0 {
			u.set(func(st *ServiceStatus) { st.Restarts++ })
		}
		p, err := u.start()
		if err != nil {
			u.log.notef("cannot start: %v", err)
			u.set(func(st *ServiceStatus) { st.LastExit, st.LastExitAt = "start failed: "+err.Error(), time.Now() })
			delay = b.after(0)
			u.log.notef("retrying in %s", delay)
			continue
		}
		switch out, ran := u.watch(p); out {
		case quitNow:
			return
		case restartNow:
			delay, b = 0, backoff{}
		default:
			delay = b.after(ran)
			u.log.notef("restarting in %s", delay)
		}
	}
}

type outcome int

const (
	failed outcome = iota
	restartNow
	quitNow
)

// sleep waits out a restart delay; a changed process restarts at once.
func (u *unit) sleep(d time.Duration) outcome {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return failed
		case r := <-u.reqs:
			restart := u.apply(r)
			close(r.done)
			if restart {
				return restartNow
			}
		case <-u.quit:
			return quitNow
		}
	}
}

// waitAfter waits until every service this one is after is running.
func (u *unit) waitAfter() bool {
	for {
		missing, changed := u.m.notReady(u.spec.After)
		if len(missing) == 0 {
			return true
		}
		u.set(func(st *ServiceStatus) { st.State, st.Since, st.WaitingFor = StateWaiting, time.Now(), missing })
		select {
		case <-changed:
		case r := <-u.reqs:
			u.apply(r)
			close(r.done)
		case <-u.quit:
			return false
		}
	}
}

func (u *unit) start() (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p, err := u.m.reaper.spawn(u.spec, u.m.null, w)
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	go func() {
		_, _ = io.Copy(u.log, r)
		r.Close()
	}()
	u.log.notef("started pid %d: %s", p.pid, host.ShellQuote(u.spec.Argv))
	state := StateStarting
	if u.spec.Ready == nil {
		state = StateRunning
	}
	u.set(func(st *ServiceStatus) {
		st.State, st.Since, st.PID, st.StartTicks, st.WaitingFor = state, p.started, p.pid, p.ticks, nil
	})
	u.m.setReady(u.name, u.spec.Ready == nil)
	return p, nil
}

// watch follows a started process until it exits, fails its ready check,
// must restart for a changed spec, or the unit is told to quit.
func (u *unit) watch(p *proc) (outcome, time.Duration) {
	var ready <-chan struct{}
	var readyTimeout <-chan time.Time
	if u.spec.Ready != nil {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ready = readyCheck(ctx, *u.spec.Ready)
		t := time.NewTimer(u.spec.Ready.timeout())
		defer t.Stop()
		readyTimeout = t.C
	}
	for {
		select {
		case ws := <-p.exit:
			u.m.setReady(u.name, false)
			ran := time.Since(p.started)
			u.log.notef("pid %d exited after %s: %s", p.pid, ran.Round(time.Millisecond), describe(ws))
			// Whatever the leader left behind in its group goes too.
			if groupAlive(p.pid) && endGroup(p.pid, u.spec.stopTimeout()) {
				u.log.notef("sent SIGKILL to what was left of process group %d", p.pid)
			}
			u.exited(describe(ws))
			return failed, ran
		case <-ready:
			ready, readyTimeout = nil, nil
			u.m.setReady(u.name, true)
			u.set(func(st *ServiceStatus) { st.State, st.Since = StateRunning, time.Now() })
		case <-readyTimeout:
			why := "not ready after " + u.spec.Ready.timeout().String()
			u.log.notef("%s; stopping it", why)
			u.end(p, why)
			return failed, 0
		case r := <-u.reqs:
			restart := u.apply(r)
			if restart {
				u.log.notef("service file changed; restarting")
				u.end(p, "")
			}
			close(r.done)
			if restart {
				return restartNow, 0
			}
		case <-u.quit:
			u.end(p, "")
			return quitNow, 0
		}
	}
}

// end stops a running process group: SIGTERM, then SIGKILL after the
// service's stop timeout.
func (u *unit) end(p *proc, why string) {
	u.m.setReady(u.name, false)
	u.set(func(st *ServiceStatus) { st.State, st.Since = StateStopping, time.Now() })
	if endGroup(p.pid, u.spec.stopTimeout()) {
		u.log.notef("process group %d still running %s after SIGTERM; sent SIGKILL", p.pid, u.spec.stopTimeout())
	}
	last := "not reaped"
	select {
	case ws := <-p.exit:
		last = describe(ws)
	case <-time.After(killWait):
	}
	u.log.notef("pid %d stopped: %s", p.pid, last)
	if why != "" {
		last = why
	}
	u.exited(last)
}

func (u *unit) exited(last string) {
	u.set(func(st *ServiceStatus) {
		st.PID, st.StartTicks, st.LastExit, st.LastExitAt = 0, 0, last, time.Now()
	})
}

// readyCheck closes the returned channel once r passes, polling every
// 20ms until ctx ends.
func readyCheck(ctx context.Context, r Ready) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if isReady(r) {
				close(ch)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return ch
}

func isReady(r Ready) bool {
	if r.Socket != "" {
		c, err := net.DialTimeout("unix", r.Socket, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	_, err := os.Stat(r.File)
	return err == nil
}
