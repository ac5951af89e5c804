package supervisor

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// manager owns the units and the status file of one supervisor.
type manager struct {
	cfg    Config
	log    *log.Logger
	reaper *reaper
	null   *os.File

	mu      sync.Mutex
	units   map[string]*unit
	specs   map[string]Service // the spec each unit was last given
	states  map[string]*ServiceStatus
	logs    map[string]*logFile
	ready   map[string]bool
	changed chan struct{} // closed and replaced when ready or units change
	report  Report
}

func newManager(cfg Config, logger *log.Logger, null *os.File) *manager {
	return &manager{
		cfg: cfg, log: logger, reaper: newReaper(), null: null,
		units: map[string]*unit{}, specs: map[string]Service{}, states: map[string]*ServiceStatus{},
		logs: map[string]*logFile{}, ready: map[string]bool{}, changed: make(chan struct{}),
		report: Report{Running: true, PID: os.Getpid(), StartedAt: time.Now()},
	}
}

// setStatus changes one service's status and rewrites the status file.
func (m *manager) setStatus(name string, f func(*ServiceStatus)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.states[name]; st != nil {
		f(st)
		m.writeStatusLocked()
	}
}

func (m *manager) setReady(name string, ready bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready[name] != ready {
		m.ready[name] = ready
		m.broadcastLocked()
	}
}

// notReady lists the names that are not running and ready, and returns a
// channel closed at the next change.
func (m *manager) notReady(names []string) ([]string, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, n := range names {
		if !m.ready[n] {
			out = append(out, n)
		}
	}
	return out, m.changed
}

func (m *manager) broadcastLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *manager) writeStatusLocked() {
	r := m.report
	r.Services = make([]ServiceStatus, 0, len(m.states))
	for _, st := range m.states {
		r.Services = append(r.Services, *st)
	}
	sort.Slice(r.Services, func(i, j int) bool { return r.Services[i].Name < r.Services[j].Name })
	data, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = writeFileAtomic(statusFile(m.cfg.StateDir), append(data, '\n'), 0o644)
	}
	if err != nil {
		m.log.Printf("writing status: %v", err)
	}
}

// reload makes the running services match STATE/services: removed ones are
// stopped, changed ones restarted, new ones started. A file that cannot be
// used leaves the service it describes as it was.
func (m *manager) reload() {
	loadedAt := time.Now()
	good, bad, err := loadServices(filepath.Join(m.cfg.StateDir, "services"))
	if err != nil {
		m.log.Printf("reading services: %v", err)
		m.mu.Lock()
		m.report.LoadedAt, m.report.Error = loadedAt, err.Error()
		m.writeStatusLocked()
		m.mu.Unlock()
		return
	}
	m.mu.Lock()
	current := make(map[string]*unit, len(m.units))
	removed := map[string]*unit{}
	for name, u := range m.units {
		current[name] = u
		if _, ok := good[name]; !ok && bad[name] == nil {
			removed[name] = u
		}
	}
	m.mu.Unlock()

	var started, restarted, stopped []string
	m.stopInOrder(removed)
	for name := range removed {
		stopped = append(stopped, name)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, s := range good {
		u, ok := current[name]
		if !ok || removed[name] != nil {
			continue
		}
		m.mu.Lock()
		old := m.specs[name]
		m.specs[name] = s
		m.mu.Unlock()
		if !sameProcess(old, s) {
			mu.Lock()
			restarted = append(restarted, name)
			mu.Unlock()
		}
		wg.Go(func() { u.update(s) })
	}
	wg.Wait()

	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range removed {
		delete(m.units, name)
		delete(m.specs, name)
		delete(m.states, name)
		delete(m.ready, name)
		if l := m.logs[name]; l != nil {
			l.Close()
			delete(m.logs, name)
		}
	}
	for name, s := range good {
		if _, ok := current[name]; !ok {
			m.addLocked(s)
			started = append(started, name)
		}
		m.states[name].Error = ""
	}
	for name, err := range bad {
		if st := m.states[name]; st != nil && m.units[name] != nil {
			st.Error = err.Error() + "; still running the previous version"
			continue
		}
		m.states[name] = &ServiceStatus{Name: name, State: StateInvalid, Since: time.Now(), Error: err.Error()}
	}
	for name, st := range m.states {
		if st.State == StateInvalid && bad[name] == nil && m.units[name] == nil {
			delete(m.states, name)
		}
	}
	m.report.LoadedAt, m.report.Error = loadedAt, ""
	m.broadcastLocked()
	m.writeStatusLocked()
	for _, l := range []*[]string{&started, &restarted, &stopped} {
		slices.Sort(*l)
	}
	m.log.Printf("services loaded: started [%s], restarted [%s], stopped [%s], invalid %d",
		strings.Join(started, " "), strings.Join(restarted, " "), strings.Join(stopped, " "), len(bad))
}

// addLocked creates and starts the unit for a new service.
func (m *manager) addLocked(s Service) {
	l := m.logs[s.Name]
	if l == nil {
		l = &logFile{path: filepath.Join(m.cfg.LogDir, s.Name+".log"), max: m.cfg.MaxLogSize}
		m.logs[s.Name] = l
	}
	u := &unit{m: m, name: s.Name, log: l, reqs: make(chan request), quit: make(chan struct{}), done: make(chan struct{}), spec: s}
	m.units[s.Name] = u
	m.specs[s.Name] = s
	m.states[s.Name] = &ServiceStatus{Name: s.Name, State: StateWaiting, Since: time.Now(), Log: l.path}
	go u.run()
}

// stopInOrder stops units so that a service is stopped only after every
// service that is after it: the kubelet before containerd. Services that do
// not depend on each other stop in parallel.
func (m *manager) stopInOrder(units map[string]*unit) {
	m.mu.Lock()
	after := map[string][]string{}
	for name := range units {
		after[name] = m.specs[name].After
	}
	m.mu.Unlock()
	left := nameSet(units)
	for len(left) > 0 {
		var batch []string
		for name := range left {
			if !hasDependent(name, left, after) {
				batch = append(batch, name)
			}
		}
		if len(batch) == 0 { // a cycle cannot load, but never hang on one
			for name := range left {
				batch = append(batch, name)
			}
		}
		var wg sync.WaitGroup
		for _, name := range batch {
			wg.Go(units[name].stop)
			delete(left, name)
		}
		wg.Wait()
	}
}

func nameSet(units map[string]*unit) map[string]bool {
	s := make(map[string]bool, len(units))
	for n := range units {
		s[n] = true
	}
	return s
}

func hasDependent(name string, left map[string]bool, after map[string][]string) bool {
	for other := range left {
		if other != name && slices.Contains(after[other], name) {
			return true
		}
	}
	return false
}

// shutdown stops every service and writes the final status.
func (m *manager) shutdown() {
	m.mu.Lock()
	all := make(map[string]*unit, len(m.units))
	for n, u := range m.units {
		all[n] = u
	}
	m.mu.Unlock()
	m.stopInOrder(all)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.logs {
		l.Close()
	}
	m.report.Running = false
	m.writeStatusLocked()
}

// killLeftovers ends the process groups a previous supervisor recorded in
// prev that still run: after it was killed, its services outlive it and
// would clash with the ones this supervisor starts.
func killLeftovers(prev Report, grace time.Duration, logger *log.Logger) {
	var wg sync.WaitGroup
	for _, s := range prev.Services {
		if s.PID <= 0 || s.StartTicks == 0 || !ownedGroup(s.PID, s.StartTicks) {
			continue
		}
		logger.Printf("ending %s (process group %d) left by a previous supervisor", s.Name, s.PID)
		wg.Go(func() { endGroup(s.PID, grace) })
	}
	wg.Wait()
}

// writeFileAtomic writes data to a temporary file beside path, then renames
// it into place.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	return nil
}
