// Package supervisor keeps kforge's node services (containerd, the kubelet)
// running on hosts whose PID 1 is not systemd.
//
// A supervisor is a detached `kforge supervise run` process. It reads one
// file per service from STATE/services/NAME.yaml, starts every service in
// its own process group with its output in LOGDIR/NAME.log, restarts a
// service that exits with exponential backoff, applies changed service
// files on SIGHUP and stops every service (the whole process group) when it
// is told to stop. STATE/supervisor.pid names it, STATE/supervisor.lock
// keeps a second one from starting and STATE/status.json says what each
// service is doing.
//
// Phases use Install, Start, Wait, Status and Stop, which act through a
// host.Host; Run, ReadReport, SendReload, WaitRunning and Shutdown are what
// the hidden `kforge supervise` commands call on the host itself.
package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	// DefaultStateDir holds services/, the pid, lock and status files.
	DefaultStateDir = "/var/lib/kforge/supervisor"
	// DefaultLogDir holds NAME.log for each service and supervisor.log.
	DefaultLogDir = "/var/log/kforge"
	// DefaultStopTimeout is how long a service has between SIGTERM and
	// SIGKILL.
	DefaultStopTimeout = 10 * time.Second
	// DefaultReadyTimeout is how long a service with a ready check has to
	// pass it before it is restarted.
	DefaultReadyTimeout = time.Minute

	// defaultPath is the PATH a service gets unless its env sets one: the
	// supervisor does not pass its own environment on.
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Service is one program the supervisor keeps running, as stored in
// STATE/services/NAME.yaml.
type Service struct {
	// Name names the file, the log and the service in status output.
	Name string `yaml:"name"`
	// Argv is the command; Argv[0] is an absolute path.
	Argv []string `yaml:"argv"`
	// Env is the service's whole environment besides a default PATH.
	Env map[string]string `yaml:"env,omitempty"`
	// Dir is the working directory; "" means /.
	Dir string `yaml:"dir,omitempty"`
	// After names services that must be running (and ready, when they
	// have a ready check) before this one is started.
	After []string `yaml:"after,omitempty"`
	// Ready, when set, tells when the service has come up.
	Ready *Ready `yaml:"ready,omitempty"`
	// StopTimeout is the time between SIGTERM and SIGKILL when the
	// service is stopped; 0 means DefaultStopTimeout.
	StopTimeout time.Duration `yaml:"stopTimeout,omitempty"`
}

// Ready is a service's ready check: exactly one of Socket (a unix socket
// that accepts a connection) or File (a path that exists). A file left over
// from an earlier run counts, so a service whose check is a file should
// remove it when it starts.
type Ready struct {
	Socket string `yaml:"socket,omitempty"`
	File   string `yaml:"file,omitempty"`
	// Timeout is how long the check may take before the service is
	// restarted; 0 means DefaultReadyTimeout.
	Timeout time.Duration `yaml:"timeout,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// reservedName is the supervisor's own log, LOGDIR/supervisor.log.
const reservedName = "supervisor"

// Validate reports every problem with s.
func (s Service) Validate() error {
	var errs []error
	if !validName(s.Name) {
		errs = append(errs, fmt.Errorf("name %q: use 1-63 lower-case letters, digits, '.', '_' or '-', not %q", s.Name, reservedName))
	}
	if len(s.Argv) == 0 {
		errs = append(errs, errors.New("argv is empty"))
	} else if !filepath.IsAbs(s.Argv[0]) {
		errs = append(errs, fmt.Errorf("argv[0] %q is not an absolute path", s.Argv[0]))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(s.Env[k], 0) {
			errs = append(errs, fmt.Errorf("env %q: a name must be non-empty without '='", k))
		}
	}
	if s.Dir != "" && !filepath.IsAbs(s.Dir) {
		errs = append(errs, fmt.Errorf("dir %q is not an absolute path", s.Dir))
	}
	for _, a := range s.After {
		if a == s.Name {
			errs = append(errs, errors.New("a service cannot be after itself"))
		} else if !validName(a) {
			errs = append(errs, fmt.Errorf("after: %q is not a service name", a))
		}
	}
	if r := s.Ready; r != nil {
		switch {
		case (r.Socket == "") == (r.File == ""):
			errs = append(errs, errors.New("ready: set exactly one of socket and file"))
		case !filepath.IsAbs(r.Socket + r.File):
			errs = append(errs, fmt.Errorf("ready: %q is not an absolute path", r.Socket+r.File))
		}
		if r.Timeout < 0 {
			errs = append(errs, errors.New("ready: timeout is negative"))
		}
	}
	if s.StopTimeout < 0 {
		errs = append(errs, errors.New("stopTimeout is negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("service %q: %w", s.Name, err)
	}
	return nil
}

func validName(n string) bool { return nameRE.MatchString(n) && n != reservedName }

// ParseService decodes one service file strictly: unknown fields, a second
// YAML document and an invalid service are errors.
func ParseService(data []byte) (Service, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Service
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return s, errors.New("empty service file")
		}
		return s, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return s, errors.New("more than one YAML document")
	}
	return s, s.Validate()
}

// Marshal renders s as a service file.
func (s Service) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return yaml.Marshal(s)
}

// ServiceFile is where the service called name is described.
func ServiceFile(stateDir, name string) string {
	return filepath.Join(stateDir, "services", name+".yaml")
}

func (s Service) stopTimeout() time.Duration {
	if s.StopTimeout > 0 {
		return s.StopTimeout
	}
	return DefaultStopTimeout
}

func (r Ready) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultReadyTimeout
}

// environ is the service's environment: PATH unless Env sets it, then Env
// sorted by name.
func (s Service) environ() []string {
	env := []string{}
	if _, ok := s.Env["PATH"]; !ok {
		env = append(env, "PATH="+defaultPath)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, k+"="+s.Env[k])
	}
	return env
}

// sameProcess reports whether a and b run the same process: a change to
// anything else (after, ready, stopTimeout) applies without a restart.
func sameProcess(a, b Service) bool {
	return slices.Equal(a.Argv, b.Argv) && maps.Equal(a.Env, b.Env) && a.Dir == b.Dir
}
