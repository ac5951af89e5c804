// Package services keeps daemons running on a host: containerd and the
// kubelet. A Manager is chosen once per host from its facts (For): systemd
// units where systemd is PID 1, kforge's own supervisor elsewhere. Phases
// only ever talk to the Manager, never to systemctl or the supervisor.
package services

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"kforge.dev/kforge/facts"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// Service is a daemon kforge keeps running on a host.
type Service struct {
	Name string
	Argv []string
	Env  map[string]string
	// After is a service that must be running first.
	After string
	// Unit is the systemd unit's name when there is one: the OS's
	// (containerd) or kforge's (kubelet). Empty: kforge has no unit for it
	// under systemd, so Stop leaves it alone there.
	Unit string
	// Config lists the files the service reads at start: a change of their
	// content restarts it.
	Config []string
	// ReadySocket, when set, is a unix socket that answers once the
	// service is ready.
	ReadySocket string
}

// Job is a command a Manager runs once every Every, for upkeep such as
// certificate renewal: a oneshot unit with a timer under systemd, a
// periodic job under kforge's supervisor.
type Job struct {
	Name  string
	Argv  []string
	Every time.Duration
}

// Manager keeps services running on one host.
type Manager interface {
	// Ensure makes sure s runs with its current argv and configuration;
	// changed says its configuration files changed in this run, which
	// restarts it where the manager cannot tell by itself.
	Ensure(ctx context.Context, s Service, changed bool) error
	// Stop stops s and keeps it from starting again.
	Stop(ctx context.Context, s Service) error
	// Restart stops s and starts it again with its current files.
	Restart(ctx context.Context, s Service) error
	// Owns tells whether kforge runs the named service on this host (its
	// unit or its supervisor service is kforge's).
	Owns(ctx context.Context, name string) (bool, error)
	// Log returns the last lines of a service's log, for error messages.
	Log(ctx context.Context, name string, lines int) string
	// Shutdown stops what kforge runs to keep services alive: its
	// supervisor, and with it every service left. Nothing under systemd.
	Shutdown(ctx context.Context) error
	// EnsureJob installs j, or changes it to j, with kforge's binary at
	// layout.KforgeBinary for a job that runs kforge. Its first run is
	// one period away.
	EnsureJob(ctx context.Context, j Job) error
	// RemoveJob removes the named job if kforge installed it.
	RemoveJob(ctx context.Context, name string) error
	// Where says, for people, how the named service runs and where its
	// log is.
	Where(name string) (runsAs, log string)
}

// For returns the Manager for a host with these facts. kforgeBinary is
// kforge's own executable on the machine kforge runs on, which the
// supervisor runs from once installed on the host.
func For(h host.Host, f facts.Facts, kforgeBinary string) Manager {
	if f.Systemd {
		return &systemd{h: h, self: kforgeBinary}
	}
	return &supervised{h: h, self: kforgeBinary}
}

// configSum hashes the content of a service's configuration files on h.
func configSum(ctx context.Context, h host.Host, files []string) (string, error) {
	sum := sha256.New()
	for _, p := range files {
		b, err := h.ReadFile(ctx, p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("read %s: %w", p, err)
		}
		fmt.Fprintf(sum, "%s %x\n", p, sha256.Sum256(b))
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// absArgv resolves argv[0] on the host's PATH. The lookup is not a
// read-only probe: what it looks for is what earlier phases install, so a
// dry run records it and goes on with /usr/bin/NAME.
func absArgv(ctx context.Context, h host.Host, argv []string) ([]string, error) {
	if path.IsAbs(argv[0]) {
		return argv, nil
	}
	p, err := host.Output(ctx, h, "sh", "-c", `command -v "$1"`, "sh", argv[0])
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s is not installed: %w", argv[0], err)
	case p == "":
		p = path.Join("/usr/bin", argv[0])
	case !path.IsAbs(p):
		return nil, fmt.Errorf("%s resolves to %q, not a file", argv[0], p)
	}
	return append([]string{p}, argv[1:]...), nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// installSelf puts kforge's own binary on the host at layout.KforgeBinary
// (the upload reads both copies to skip an identical one).
func installSelf(ctx context.Context, h host.Host, self string) error {
	if self == "" {
		return fmt.Errorf("kforge's own executable is unknown: cannot install it on %s", h.Name())
	}
	return h.Upload(ctx, self, layout.KforgeBinary, layout.ExecMode)
}
