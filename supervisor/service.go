// Package supervisor keeps kforge's node services (containerd, then the
// kubelet) running on hosts whose PID 1 is not systemd.
//
// The supervisor, `kforge supervise run`, runs each service of
// STATE/services/NAME.yaml in a process group of its own, once those it is
// after run and answer, logs to LOGDIR/NAME.log and restarts a service
// that exits, with backoff; SIGHUP makes it apply changed files, SIGTERM
// stops it. Phases use Install, Uninstall, Start, Wait and Stop, which run
// `kforge supervise` commands through a host.Host; those call Run, Reload,
// Shutdown, WaitRunning and ReadStatus on the host itself.
package supervisor

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Service is one program the supervisor keeps running, as stored in
// STATE/services/NAME.yaml.
type Service struct {
	Name string `yaml:"name"`
	// Argv is the command; Argv[0] is an absolute path.
	Argv []string `yaml:"argv"`
	// Env is the whole environment besides a default PATH. kforge puts a
	// hash of the service's configuration files in it, so that a change
	// restarts the service.
	Env map[string]string `yaml:"env,omitempty"`
	// After names services that must be running, and ready, first.
	After []string `yaml:"after,omitempty"`
	// Ready, when set, tells when the service has come up.
	Ready *Ready `yaml:"ready,omitempty"`
	// Every makes the service a periodic job: the supervisor runs it once
	// every Every, the first time Every after it loads the file, and lets
	// it exit, instead of keeping it running.
	Every time.Duration `yaml:"every,omitempty"`
}

// Ready is a ready check: a unix socket that accepts a connection.
type Ready struct {
	Socket string `yaml:"socket"`
}

// ServiceFile is where the service called name is described.
func ServiceFile(stateDir, name string) string {
	return filepath.Join(stateDir, "services", name+".yaml")
}

// loadServices reads every NAME.yaml in dir, and says why it cannot use
// the files it skips.
func loadServices(dir string) (good map[string]Service, bad []error) {
	good = map[string]Service{}
	paths, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		var s Service
		data, err := os.ReadFile(path)
		if err == nil {
			err = yaml.Unmarshal(data, &s)
		}
		if err == nil && s.Name != name {
			err = errors.New("its name field differs from the file name")
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", path, err))
		} else {
			good[name] = s
		}
	}
	return good, bad
}

// environ is the service's environment: a default PATH unless Env sets
// one (the supervisor does not pass its own on), then Env by name.
func (s Service) environ() []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if _, ok := s.Env["PATH"]; ok {
		env = nil
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, k+"="+s.Env[k])
	}
	return env
}

// sameProcess reports whether a and b run the same process: only a change
// of argv, environment or period restarts a running service.
func sameProcess(a, b Service) bool {
	return slices.Equal(a.Argv, b.Argv) && maps.Equal(a.Env, b.Env) && a.Every == b.Every
}
