package phases

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

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/supervisor"
)

// Service is a daemon kforge keeps running on a host: containerd and the
// kubelet. With systemd as PID 1 it is a systemd unit; otherwise kforge's
// own supervisor (`kforge supervise run`) runs it and restarts it.
type Service struct {
	Name string
	Argv []string
	Env  map[string]string
	// After is a service that must be started first.
	After string
	// Unit is the systemd unit's name, when the OS ships one (containerd).
	Unit string
	// Config lists the files the service reads at start, whose change
	// restarts it under kforge's supervisor; nil means configFiles[Name].
	Config []string
}

// ensureService makes sure the service runs with its current argv and
// configuration; restart says its configuration files changed. With
// systemd it is the OS's or kforge's unit; otherwise kforge installs
// itself on the host and its supervisor runs the service, restarting it
// when its argv, environment or configuration changed.
func (d *Data) ensureService(ctx context.Context, s Service, restart bool) error {
	if d.Facts.Systemd {
		return d.ensureUnit(ctx, s, restart)
	}
	argv, err := d.absArgv(ctx, s.Argv)
	if err != nil {
		return err
	}
	sum, err := d.configSum(ctx, s)
	if err != nil {
		return err
	}
	sv := supervisor.Service{
		Name: s.Name,
		Argv: argv,
		// A changed hash of the configuration files makes the supervisor
		// restart the service on reload.
		Env: map[string]string{"KFORGE_CONFIG_SHA256": sum},
	}
	for k, v := range s.Env {
		sv.Env[k] = v
	}
	if s.After != "" {
		sv.After = []string{s.After}
	}
	if s.Name == "containerd" {
		sv.Ready = &supervisor.Ready{Socket: layout.ContainerdSocket}
	}
	if err := d.installKforge(ctx); err != nil {
		return err
	}
	if err := supervisor.Install(ctx, d.Host, layout.SupervisorDir, sv); err != nil {
		return err
	}
	if err := supervisor.Start(ctx, d.Host, layout.KforgeBinary, layout.SupervisorDir); err != nil {
		return err
	}
	return supervisor.Wait(ctx, d.Host, layout.KforgeBinary, layout.SupervisorDir, s.Name)
}

// configFiles are the files whose content a service reads at start.
var configFiles = map[string][]string{
	"containerd": {layout.ContainerdDir + "/config.toml"},
	"kubelet":    {layout.KubeletDir + "/config.yaml", layout.KubernetesDir + "/kubelet.conf"},
}

// configSum hashes the service's configuration files on the host.
func (d *Data) configSum(ctx context.Context, s Service) (string, error) {
	files := s.Config
	if files == nil {
		files = configFiles[s.Name]
	}
	h := sha256.New()
	for _, p := range files {
		b, err := d.Host.ReadFile(ctx, p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		fmt.Fprintf(h, "%s %x\n", p, sha256.Sum256(b))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// absArgv resolves argv[0] on the host's PATH.
func (d *Data) absArgv(ctx context.Context, argv []string) ([]string, error) {
	if path.IsAbs(argv[0]) {
		return argv, nil
	}
	p, err := check(ctx, d, "sh", "-c", `command -v "$1"`, "sh", argv[0])
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s is not installed on %s", argv[0], d.Host.Name())
	case p == "":
		// A dry run records the lookup and learns nothing.
		p = path.Join("/usr/bin", argv[0])
	case !path.IsAbs(p):
		return nil, fmt.Errorf("%s on %s resolves to %q, not a file", argv[0], d.Host.Name(), p)
	}
	return append([]string{p}, argv[1:]...), nil
}

// installKforge puts kforge's own binary on the host for the supervisor,
// skipped when the host's copy is identical.
func (d *Data) installKforge(ctx context.Context) error {
	if d.KforgeBinary == "" {
		return fmt.Errorf("kforge's own executable is unknown: cannot install the supervisor")
	}
	if d.kforgeInstalled {
		return nil
	}
	if err := d.Host.Upload(ctx, d.KforgeBinary, layout.KforgeBinary, 0o755); err != nil {
		return err
	}
	// Once per run: the upload reads both copies to skip identical ones.
	d.kforgeInstalled = true
	return nil
}

// stopService stops one service and keeps it from starting again.
func (d *Data) stopService(ctx context.Context, s Service) error {
	if d.Facts.Systemd {
		if s.Unit == "" {
			return nil
		}
		_, err := d.Host.Run(ctx, host.Cmd{Argv: []string{"sh", "-c", `systemctl disable --now "$1" 2>/dev/null; true`, "sh", s.Unit}, Sudo: true})
		return err
	}
	if ok, err := host.Exists(ctx, d.Host, supervisor.ServiceFile(layout.SupervisorDir, s.Name)); err != nil || !ok {
		return err
	}
	if err := supervisor.Uninstall(ctx, d.Host, layout.SupervisorDir, s.Name); err != nil {
		return err
	}
	if ok, err := host.Exists(ctx, d.Host, layout.KforgeBinary); err != nil || !ok {
		return err
	}
	return supervisor.Start(ctx, d.Host, layout.KforgeBinary, layout.SupervisorDir)
}

// restartService stops a running service and starts it again.
func (d *Data) restartService(ctx context.Context, s Service) error {
	if d.Facts.Systemd {
		return d.ensureUnit(ctx, s, true)
	}
	if err := d.stopService(ctx, s); err != nil {
		return err
	}
	return d.ensureService(ctx, s, false)
}

// stopSupervisor stops kforge's supervisor and whatever it still runs.
func (d *Data) stopSupervisor(ctx context.Context) error {
	if ok, err := host.Exists(ctx, d.Host, layout.KforgeBinary); err != nil || !ok {
		return err
	}
	return supervisor.Stop(ctx, d.Host, layout.KforgeBinary, layout.SupervisorDir)
}

// waitFor runs a read-only probe every 100 ms until it succeeds or the
// timeout passes; on timeout the error carries the probe's last output.
func waitFor(ctx context.Context, h host.Host, timeout time.Duration, what string, argv ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		// Not ReadOnly: a dry run records the wait instead of waiting for
		// something it never started.
		_, err := h.Run(ctx, host.Cmd{Argv: argv, Sudo: true})
		if err == nil {
			return nil
		}
		last = err.Error()
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is not up after %s: `%s` says: %s", what, timeout, strings.Join(argv, " "), tail(last, 5))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logTail returns the last lines of a service's log on the host, for
// error messages.
func (d *Data) logTail(ctx context.Context, name string, n int) string {
	p := path.Join(layout.LogDir, name+".log")
	if d.Facts.Systemd {
		out, err := host.Output(ctx, d.Host, "journalctl", "-u", name, "-n", fmt.Sprint(n), "--no-pager")
		if err == nil {
			return out
		}
	}
	b, err := d.Host.ReadFile(ctx, p)
	if err != nil {
		return fmt.Sprintf("(no log at %s: %v)", p, err)
	}
	return tail(string(b), n)
}

// check runs a command that tells whether something is in place. It is
// not a read-only probe: what it checks is what earlier phases would have
// done, so a dry run records it and carries on as if it passed.
func check(ctx context.Context, d *Data, argv ...string) (string, error) {
	res, err := d.Host.Run(ctx, host.Cmd{Argv: argv, Sudo: true})
	return strings.TrimSpace(string(res.Stdout)), err
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
