package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// SendReload sends SIGHUP to stateDir's supervisor and waits until it has
// applied the service files as they are now: removed and changed services
// are stopped, new and changed ones handed to be started. Invalid service
// files do not fail a reload; the status shows them.
func SendReload(ctx context.Context, stateDir string) error {
	pid, running, err := probe(stateDir)
	if err != nil {
		return err
	}
	if !running {
		return fmt.Errorf("%w (state %s)", ErrNotRunning, stateDir)
	}
	sent := time.Now()
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("signal supervisor pid %d: %w", pid, err)
	}
	var r Report
	err = poll(ctx, 10*time.Millisecond, func() (bool, error) {
		r, err = ReadReport(stateDir)
		if err != nil {
			return false, err
		}
		if !r.Running {
			return false, fmt.Errorf("supervisor pid %d exited during the reload; see its log", pid)
		}
		return !r.LoadedAt.Before(sent), nil
	})
	if err != nil {
		return fmt.Errorf("reload supervisor pid %d: %w", pid, err)
	}
	if r.Error != "" {
		return fmt.Errorf("reload supervisor pid %d: %s", pid, r.Error)
	}
	return nil
}

// Shutdown stops stateDir's supervisor, which stops its services, and
// returns once it and they are gone. When ctx ends first it kills the
// supervisor and the process groups of its services. With no supervisor
// running it ends services a killed supervisor left behind.
func Shutdown(ctx context.Context, stateDir string) error {
	logger := log.New(os.Stderr, "kforge supervisor: ", 0)
	pid, running, err := probe(stateDir)
	if err != nil {
		return err
	}
	if !running {
		prev, _ := readStatusFile(stateDir)
		killLeftovers(prev, DefaultStopTimeout, logger)
		return nil
	}
	var ticks uint64
	if st, err := readStat(pid); err == nil {
		ticks = st.start
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal supervisor pid %d: %w", pid, err)
	}
	gone := func() (bool, error) {
		_, running, err := probe(stateDir)
		return !running && !alive(pid, ticks), err
	}
	if err := poll(ctx, 50*time.Millisecond, gone); err == nil {
		return nil
	} else if ctx.Err() == nil {
		return err
	}
	// Out of time: kill the supervisor, then what it left running.
	_ = syscall.Kill(pid, syscall.SIGKILL)
	kctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	_ = poll(kctx, 50*time.Millisecond, gone)
	prev, _ := readStatusFile(stateDir)
	killLeftovers(prev, 0, logger)
	return fmt.Errorf("supervisor pid %d did not stop its services in time: killed it and them", pid)
}

// WaitRunning waits until stateDir's supervisor runs and has loaded its
// services, and until each service named is running (and ready). When ctx
// ends first the error says what is missing, with the tail of the log that
// says why: logDir/supervisor.log for the supervisor, NAME.log for a
// service.
func WaitRunning(ctx context.Context, stateDir, logDir string, services []string) error {
	var r Report
	err := poll(ctx, 20*time.Millisecond, func() (bool, error) {
		var err error
		if r, err = ReadReport(stateDir); err != nil {
			return false, err
		}
		if !r.Running || r.LoadedAt.IsZero() {
			return false, nil
		}
		for _, name := range services {
			s, ok := r.Service(name)
			if ok && s.State == StateInvalid {
				return false, fmt.Errorf("service %s: %s", name, s.Error)
			}
			if !ok || s.State != StateRunning {
				return false, nil
			}
		}
		return true, nil
	})
	if err == nil || ctx.Err() == nil {
		return err
	}
	if !r.Running || r.LoadedAt.IsZero() {
		msg := fmt.Sprintf("supervisor for %s is not running", stateDir)
		if logDir != "" {
			msg += logTail(filepath.Join(logDir, "supervisor.log"))
		}
		return errors.New(msg)
	}
	var msgs []string
	for _, name := range services {
		s, ok := r.Service(name)
		switch {
		case !ok:
			msgs = append(msgs, fmt.Sprintf("service %s is not installed (no %s)", name, ServiceFile(stateDir, name)))
		case s.State != StateRunning:
			m := fmt.Sprintf("service %s is %s", name, s.State)
			if len(s.WaitingFor) > 0 {
				m += fmt.Sprintf(" for %v", s.WaitingFor)
			}
			if s.LastExit != "" {
				m += fmt.Sprintf(", restarted %d times, last exit: %s", s.Restarts, s.LastExit)
			}
			msgs = append(msgs, m+logTail(s.Log))
		}
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// logTailLines is how much of a log an error quotes: few enough that the
// error's own line survives when a CommandError keeps only the tail of
// the command's output.
const logTailLines = 8

// logTail is the end of a log file, to append to an error.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 64<<10 {
		b = b[len(b)-64<<10:]
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(0, len(lines)-logTailLines):]
	return fmt.Sprintf("; the end of %s:\n  %s", path, strings.Join(lines, "\n  "))
}

// poll calls cond every interval until it is done, fails, or ctx ends.
func poll(ctx context.Context, every time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		done, err := cond()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
