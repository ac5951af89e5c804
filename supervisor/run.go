package supervisor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"kforge.dev/kforge/layout"
)

// Config is what Run needs.
type Config struct {
	StateDir string
	LogDir   string // for NAME.log and supervisor.log; "" means layout.LogDir
	// StopTimeout is the time from SIGTERM to SIGKILL; 0 means 10s.
	StopTimeout time.Duration
}

func lockFile(stateDir string) string   { return filepath.Join(stateDir, "supervisor.lock") }
func statusFile(stateDir string) string { return filepath.Join(stateDir, "status.json") }

// Run is the supervisor. It locks the state directory (or fails with
// "already running"), ends what a killed predecessor left running, and
// keeps the services running until ctx ends (kforge ends it on SIGTERM);
// SIGHUP makes it apply the service files again. Run reaps every child of
// its process, so that process must not start commands of its own.
func Run(ctx context.Context, cfg Config) error {
	hup := make(chan os.Signal, 1) // before the lock: SIGHUP would end it
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	closeInheritedFiles()
	cfg.LogDir = cmp.Or(cfg.LogDir, layout.LogDir)
	cfg.StopTimeout = cmp.Or(cfg.StopTimeout, 10*time.Second)
	logf := log.New(os.Stderr, "kforge supervisor: ", log.LstdFlags).Printf
	for _, d := range []string{cfg.StateDir, cfg.LogDir} {
		if err := os.MkdirAll(d, layout.ExecMode); err != nil {
			return err
		}
	}
	// Others find the lock's holder with F_GETLK (see probe). Closing any
	// descriptor of the file would drop the lock: never open it again.
	lock, err := os.OpenFile(lockFile(cfg.StateDir), os.O_RDWR|os.O_CREATE, layout.PublicMode)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.FcntlFlock(lock.Fd(), syscall.F_SETLK, &syscall.Flock_t{Type: syscall.F_WRLCK}); err != nil {
		if pid, running := probe(cfg.StateDir); running {
			err = fmt.Errorf("supervisor already running: pid %d holds the lock", pid)
		}
		return fmt.Errorf("lock %s: %w", lockFile(cfg.StateDir), err)
	}
	// Its own session is where a later supervisor, or Shutdown, finds the
	// services of one that was killed.
	_, _ = syscall.Setsid() // fails when it leads a session, or a process group
	if st, err := readStat(os.Getpid()); err != nil || st.sid != os.Getpid() {
		return errors.New("kforge supervise run must lead its own session: start it with setsid")
	}
	endSession(readStatusFile(cfg.StateDir).PID, cfg.StopTimeout)
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, 36 /* PR_SET_CHILD_SUBREAPER */, 1, 0); e != 0 {
		logf("cannot become a child subreaper, orphans of services go to PID 1: %v", e)
	}
	m := &manager{cfg: cfg, logf: logf, units: map[string]*unit{}, exits: map[int]chan syscall.WaitStatus{},
		status: Status{PID: os.Getpid(), LogDir: cfg.LogDir, Services: map[string]*ServiceStatus{}}}
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	go func() {
		for range chld {
			m.reap()
		}
	}()
	logf("started, pid %d, state %s, logs %s", os.Getpid(), cfg.StateDir, cfg.LogDir)
	m.reload()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-hup:
			m.reload()
		}
	}
	m.stop(slices.Collect(maps.Keys(m.units)))
	signal.Stop(chld)
	close(chld)
	logf("stopped")
	return nil
}

// manager owns the units and the status of one supervisor. Only Run's
// goroutine touches units; mu guards status and exits.
type manager struct {
	cfg   Config
	logf  func(format string, args ...any)
	units map[string]*unit

	mu     sync.Mutex
	status Status
	exits  map[int]chan syscall.WaitStatus
}

// update changes one service's status and rewrites the status file.
func (m *manager) update(name string, f func(*ServiceStatus)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.status.Services[name]; st != nil {
		f(st)
		m.writeLocked()
	}
}

// running reports whether every named service is running and ready.
func (m *manager) running(names []string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !slices.ContainsFunc(names, func(n string) bool {
		return m.status.Services[n] == nil || m.status.Services[n].State != StateRunning
	})
}

// writeLocked writes the status file whole, then renames it into place.
func (m *manager) writeLocked() {
	data, _ := json.MarshalIndent(m.status, "", "  ")
	path := statusFile(m.cfg.StateDir)
	err := os.WriteFile(path+".tmp", append(data, '\n'), layout.PublicMode)
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		m.logf("writing the status: %v", err)
	}
}

// reload makes the running services match STATE/services: removed ones
// are stopped, those whose process changed restarted, new ones started. A
// file that cannot be used counts as removed; the log says why.
func (m *manager) reload() {
	loadedAt := time.Now()
	specs, errs := loadServices(filepath.Join(m.cfg.StateDir, "services"))
	for _, err := range errs {
		m.logf("%v", err)
	}
	var stale []string
	for name, u := range m.units {
		if s, ok := specs[name]; ok && sameProcess(*u.spec.Load(), s) {
			u.spec.Store(&s)
		} else {
			stale = append(stale, name)
		}
	}
	m.stop(stale)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range stale {
		delete(m.status.Services, name)
	}
	for name, s := range specs {
		if m.units[name] == nil {
			ctx, cancel := context.WithCancel(context.Background())
			u := &unit{m: m, name: name, cancel: cancel, done: make(chan struct{}),
				log: &logFile{path: filepath.Join(m.cfg.LogDir, name+".log"), max: 10 << 20}}
			u.spec.Store(&s)
			m.units[name], m.status.Services[name] = u, &ServiceStatus{State: StateWaiting, After: s.After}
			go u.run(ctx)
		}
	}
	m.status.LoadedAt = loadedAt
	m.writeLocked()
}

// stop ends the named units: a service once every service that is after
// it has stopped (the kubelet before containerd), the rest at once.
func (m *manager) stop(names []string) {
	for len(names) > 0 {
		var now, later []string
		for _, n := range names {
			if slices.ContainsFunc(names, func(o string) bool { return slices.Contains(m.units[o].spec.Load().After, n) }) {
				later = append(later, n)
			} else {
				now = append(now, n)
			}
		}
		if len(now) == 0 { // a cycle, which never started
			now, later = later, nil
		}
		for _, n := range now {
			m.units[n].cancel()
		}
		for _, n := range now {
			<-m.units[n].done
			delete(m.units, n)
		}
		names = later
	}
}
