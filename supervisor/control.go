package supervisor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// States a service can be in.
const (
	StateWaiting  = "waiting"  // for the services it is after
	StateStarting = "starting" // started; its socket does not answer yet
	StateRunning  = "running"  // started and ready
	StateBackoff  = "backoff"  // it exited and will be restarted
	StateStopped  = "stopped"  // stopped by the supervisor
	// StateScheduled is a periodic job's state between its runs.
	StateScheduled = "scheduled"
)

// up says whether a service is as it should be: running and ready, or a
// periodic job waiting for its next run.
func up(s *ServiceStatus) bool {
	return s != nil && (s.State == StateRunning || s.State == StateScheduled)
}

// Status is what STATE/status.json holds. ReadStatus works out Running;
// the rest is the last state of a supervisor that is not running.
type Status struct {
	Running bool `json:"running"`
	PID     int  `json:"pid,omitempty"`
	// LoadedAt is when the supervisor last began to apply services/.
	LoadedAt time.Time                 `json:"loadedAt,omitzero"`
	LogDir   string                    `json:"logDir,omitempty"`
	Services map[string]*ServiceStatus `json:"services,omitempty"`
}

// ServiceStatus is one service's state. PID leads its process group;
// Restarts counts restarts after an exit since it was last (re)installed.
type ServiceStatus struct {
	State    string   `json:"state"`
	PID      int      `json:"pid,omitempty"`
	Restarts int      `json:"restarts"`
	LastExit string   `json:"lastExit,omitempty"`
	After    []string `json:"after,omitempty"`
}

// ErrNotRunning is returned when a command needs a running supervisor and
// there is none.
var ErrNotRunning = errors.New("supervisor not running")

// probe reports whether a supervisor holds stateDir's lock, and its pid.
func probe(stateDir string) (pid int, running bool) {
	f, err := os.Open(lockFile(stateDir))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	err = syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk)
	return int(lk.Pid), err == nil && lk.Type != syscall.F_UNLCK
}

// readStatusFile reads the status as a supervisor last wrote it.
func readStatusFile(stateDir string) (st Status) {
	data, _ := os.ReadFile(statusFile(stateDir))
	_ = json.Unmarshal(data, &st) // the file is written whole, then renamed
	return st
}

// ReadStatus reads stateDir's status and whether its supervisor runs. The
// status of an earlier supervisor, while a new one starts, is empty.
func ReadStatus(stateDir string) Status {
	st := readStatusFile(stateDir)
	pid, running := probe(stateDir)
	if running && st.PID != pid {
		st = Status{PID: pid}
	}
	st.Running = running
	return st
}

// Reload sends SIGHUP to stateDir's supervisor and waits until it has
// applied the service files as they are now.
func Reload(ctx context.Context, stateDir string) error {
	pid, running := probe(stateDir)
	if !running {
		return fmt.Errorf("%w (state %s)", ErrNotRunning, stateDir)
	}
	sent := time.Now()
	return signalAndWait(ctx, stateDir, pid, "reload", syscall.SIGHUP, func(st Status) (bool, error) {
		if !st.Running {
			return false, errors.New("it exited; see its log")
		}
		return !st.LoadedAt.Before(sent), nil
	})
}

// Shutdown stops stateDir's supervisor, which stops its services, and
// returns once it and they are gone; when ctx ends first it kills them.
// With no supervisor running it ends what a killed one left running.
func Shutdown(ctx context.Context, stateDir string) error {
	pid, running := probe(stateDir)
	if !running {
		endSession(readStatusFile(stateDir).PID, 10*time.Second)
		return nil
	}
	err := signalAndWait(ctx, stateDir, pid, "stop", syscall.SIGTERM, func(st Status) (bool, error) {
		return !st.Running && gone(pid), nil // the lock goes before the process
	})
	if ctx.Err() != nil {
		end(func(st procStat) bool { return st.sid == pid }, 0)
		return fmt.Errorf("%w: killed it and its services", err)
	}
	return err
}

// signalAndWait sends sig to stateDir's supervisor, pid, to make it do
// what, and waits until done holds.
func signalAndWait(ctx context.Context, stateDir string, pid int, what string, sig syscall.Signal, done func(Status) (bool, error)) error {
	err := errors.New("the lock's holder is in another pid namespace")
	if pid > 0 {
		err = syscall.Kill(pid, sig)
	}
	if err == nil || errors.Is(err, syscall.ESRCH) { // gone: done says what that means
		err = wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
			return done(ReadStatus(stateDir))
		})
	}
	if err != nil {
		err = fmt.Errorf("%s supervisor pid %d: %w", what, pid, err)
	}
	return err
}

// WaitRunning waits until stateDir's supervisor runs and has loaded its
// services, and each service named is running and ready; the error says
// what is not, with the end of supervisor.log or NAME.log that says why.
func WaitRunning(ctx context.Context, stateDir, logDir string, services []string) error {
	var st Status
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		if st = ReadStatus(stateDir); !st.Running || st.LoadedAt.IsZero() {
			return false, nil
		}
		return !slices.ContainsFunc(services, func(name string) bool { return !up(st.Services[name]) }), nil
	})
	if err == nil || ctx.Err() == nil {
		return err
	}
	supervisorLog := logTail(filepath.Join(logDir, "supervisor.log"))
	if !st.Running || st.LoadedAt.IsZero() {
		return fmt.Errorf("supervisor for %s is not running%s", stateDir, supervisorLog)
	}
	var msgs []string
	for _, name := range services {
		switch s := st.Services[name]; {
		case s == nil:
			msgs = append(msgs, fmt.Sprintf("service %s is not installed: no valid %s%s", name, ServiceFile(stateDir, name), supervisorLog))
		case s.State == StateWaiting:
			msgs = append(msgs, fmt.Sprintf("service %s is waiting for %s", name, strings.Join(s.After, " and ")))
		case !up(s):
			msgs = append(msgs, fmt.Sprintf("service %s is %s, restarted %d times, last exit: %s%s",
				name, s.State, s.Restarts, cmp.Or(s.LastExit, "none"), logTail(filepath.Join(st.LogDir, name+".log"))))
		}
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// logTail is the end of a log for an error: few lines, so that the error's
// own survives when a host.CommandError keeps only the output's tail.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return fmt.Sprintf("; the end of %s:\n  %s", path, strings.Join(lines[max(0, len(lines)-8):], "\n  "))
}
