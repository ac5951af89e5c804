package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	// ErrRunning is returned by Run when a supervisor for the state
	// directory is already running.
	ErrRunning = errors.New("supervisor already running")
	// ErrNotRunning is returned when a command needs a running supervisor
	// and there is none.
	ErrNotRunning = errors.New("supervisor not running")
)

// Config is what Run needs.
type Config struct {
	StateDir string
	// LogDir receives NAME.log for each service; "" means DefaultLogDir.
	LogDir string
	// MaxLogSize is the size at which a service's log rotates; 0 means
	// DefaultMaxLogSize.
	MaxLogSize int64
	// Log receives the supervisor's own messages; nil means stderr.
	Log io.Writer
}

func (c Config) withDefaults() Config {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.LogDir == "" {
		c.LogDir = DefaultLogDir
	}
	if c.MaxLogSize == 0 {
		c.MaxLogSize = DefaultMaxLogSize
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	return c
}

func pidFile(stateDir string) string  { return filepath.Join(stateDir, "supervisor.pid") }
func lockFile(stateDir string) string { return filepath.Join(stateDir, "supervisor.lock") }

// Run is the supervisor: it takes the state directory's lock (or returns
// ErrRunning), writes the pid file, starts the services and keeps them
// running until ctx ends or it gets SIGTERM or SIGINT; SIGHUP reloads the
// services. Before returning it stops every service and removes the pid
// file. Run waits for its children itself, so the process it runs in must
// not start other commands.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	closeInheritedFiles()
	logger := log.New(cfg.Log, "kforge supervisor: ", log.LstdFlags)
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "services"), cfg.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	lock, err := acquireLock(cfg.StateDir)
	if err != nil {
		return err
	}
	defer lock.Close()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	if err := setSubreaper(); err != nil {
		logger.Printf("cannot become a child subreaper, orphans of services go to PID 1: %v", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()

	prev, _ := readStatusFile(cfg.StateDir)
	if err := writeFileAtomic(pidFile(cfg.StateDir), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidFile(cfg.StateDir))
	logger.Printf("started, pid %d, state %s, logs %s", os.Getpid(), cfg.StateDir, cfg.LogDir)
	killLeftovers(prev, DefaultStopTimeout, logger)

	m := newManager(cfg, logger, null)
	stopReaper := make(chan struct{})
	reaperDone := make(chan struct{})
	go func() {
		defer close(reaperDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-chld:
			case <-t.C:
			case <-stopReaper:
				m.reaper.reap()
				return
			}
			m.reaper.reap()
		}
	}()
	m.reload()
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case s := <-sigs:
			if s == syscall.SIGHUP {
				m.reload()
				continue
			}
			logger.Printf("got %v, stopping", s)
			running = false
		}
	}
	m.shutdown()
	close(stopReaper)
	<-reaperDone
	logger.Printf("stopped")
	return nil
}

// acquireLock takes STATE/supervisor.lock. It retries for a second, since
// a status probe holds the lock shared for an instant; a running supervisor
// holds it for good.
func acquireLock(stateDir string) (*os.File, error) {
	f, err := os.OpenFile(lockFile(stateDir), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for i := 0; ; i++ {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || i == 20 {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				pid, _ := readPID(stateDir)
				return nil, fmt.Errorf("%w: pid %d holds %s", ErrRunning, pid, lockFile(stateDir))
			}
			return nil, fmt.Errorf("lock %s: %w", lockFile(stateDir), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// probe reports whether a supervisor holds stateDir's lock, and its pid.
// A supervisor that has just taken the lock writes its pid at once, so a
// missing or dead pid is waited for briefly.
func probe(stateDir string) (pid int, running bool, err error) {
	f, err := os.Open(lockFile(stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	for i := 0; ; i++ {
		held, err := lockHeld(f)
		if err != nil || !held {
			return 0, false, err
		}
		if pid, err := readPID(stateDir); err == nil && alive(pid, 0) {
			return pid, true, nil
		}
		if i == 40 {
			return 0, true, fmt.Errorf("%s is locked but %s names no live process", lockFile(stateDir), pidFile(stateDir))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockHeld reports whether another process holds f's lock, by taking it
// shared for an instant.
func lockHeld(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		return false, syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, fmt.Errorf("lock %s: %w", f.Name(), err)
}

func readPID(stateDir string) (int, error) {
	b, err := os.ReadFile(pidFile(stateDir))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func readStatusFile(stateDir string) (Report, error) {
	var r Report
	data, err := os.ReadFile(statusFile(stateDir))
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(data, &r)
}

// closeInheritedFiles closes the descriptors the supervisor inherited from
// whatever started it (a shell's lock file, a terminal): the supervisor
// and its services would otherwise hold them for as long as the node
// runs. Descriptors Go opened itself are close-on-exec and stay.
func closeInheritedFiles() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
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
