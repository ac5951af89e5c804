package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"kforge.dev/kforge/host"
)

// Timeouts of the `kforge supervise` commands that the functions below
// run on a host; a shorter ctx deadline shortens them.
const (
	startTimeout  = 30 * time.Second
	reloadTimeout = time.Minute
	stopTimeout   = 2 * time.Minute
	waitTimeout   = 2 * time.Minute
)

// launchScript runs as `sh -c launchScript sh LOGDIR KFORGE supervise run
// ...`. It points the supervisor's stdin at /dev/null and its output at
// LOGDIR/supervisor.log before exec, so that nothing holds the pipes of
// the command that started it: `setsid -f` returns at once, and so does
// the Run that ran it.
const launchScript = `mkdir -p -- "$1" && log="$1/supervisor.log" && shift && exec "$@" </dev/null >>"$log" 2>&1`

// Option changes how Start launches a supervisor.
type Option func(*options)

type options struct{ logDir string }

// WithLogDir puts the services' logs and supervisor.log in dir instead of
// DefaultLogDir.
func WithLogDir(dir string) Option { return func(o *options) { o.logDir = dir } }

// Install writes s to stateDir/services/NAME.yaml on h. A running
// supervisor applies it on its next reload, which Start sends.
func Install(ctx context.Context, h host.Host, stateDir string, s Service) error {
	data, err := s.Marshal()
	if err != nil {
		return err
	}
	return h.WriteFile(ctx, ServiceFile(stateDir, s.Name), data, 0o644)
}

// Uninstall removes the service called name from stateDir on h; the
// supervisor stops it on its next reload.
func Uninstall(ctx context.Context, h host.Host, stateDir, name string) error {
	return h.Remove(ctx, ServiceFile(stateDir, name))
}

// Start makes h's supervisor for stateDir run the installed services. When
// one is running it is told to reload and Start returns once it has;
// otherwise Start launches `kforgePath supervise run` in a new session with
// `setsid -f`, detached from this command, and waits until it has loaded
// the services (not until they are ready: see Wait).
func Start(ctx context.Context, h host.Host, kforgePath, stateDir string, opts ...Option) error {
	o := options{logDir: DefaultLogDir}
	for _, f := range opts {
		f(&o)
	}
	running, err := isRunning(ctx, h, kforgePath, stateDir)
	if err != nil {
		return err
	}
	if running {
		_, err := h.Run(ctx, host.Cmd{Argv: cli(kforgePath, "reload", stateDir, "--timeout", timeout(ctx, reloadTimeout)), Sudo: true})
		return wrap("reload", err)
	}
	argv := append([]string{"setsid", "-f", "sh", "-c", launchScript, "sh", o.logDir},
		cli(kforgePath, "run", stateDir, "--log-dir", o.logDir)...)
	if _, err := h.Run(ctx, host.Cmd{Argv: argv, Sudo: true}); err != nil {
		return wrap("start", err)
	}
	// Not ReadOnly: it waits for what the launch did, which a dry run only
	// records.
	_, err = h.Run(ctx, host.Cmd{Argv: cli(kforgePath, "wait", stateDir, "--log-dir", o.logDir, "--timeout", timeout(ctx, startTimeout)), Sudo: true})
	return wrap("start", err)
}

// isRunning asks h whether stateDir's supervisor runs. No pid file means
// none without running anything, which keeps dry runs (whose files live
// elsewhere) from probing with a kforge that is not installed yet.
func isRunning(ctx context.Context, h host.Host, kforgePath, stateDir string) (bool, error) {
	if ok, err := host.Exists(ctx, h, pidFile(stateDir)); err != nil || !ok {
		return false, err
	}
	r, err := Status(ctx, h, kforgePath, stateDir)
	return r.Running, err
}

// Wait waits until h's supervisor runs and each named service is running
// and ready; the error names the services that are not, with the end of
// their logs.
func Wait(ctx context.Context, h host.Host, kforgePath, stateDir string, services ...string) error {
	argv := cli(kforgePath, "wait", stateDir, "--timeout", timeout(ctx, waitTimeout))
	for _, s := range services {
		argv = append(argv, "--service", s)
	}
	_, err := h.Run(ctx, host.Cmd{Argv: argv, Sudo: true})
	return wrap("wait", err)
}

// Stop stops h's supervisor and all its services and returns once they are
// gone. With no supervisor running it does nothing.
func Stop(ctx context.Context, h host.Host, kforgePath, stateDir string) error {
	_, err := h.Run(ctx, host.Cmd{Argv: cli(kforgePath, "stop", stateDir, "--timeout", timeout(ctx, stopTimeout)), Sudo: true})
	return wrap("stop", err)
}

// Status reports h's supervisor and its services.
func Status(ctx context.Context, h host.Host, kforgePath, stateDir string) (Report, error) {
	var r Report
	res, err := h.Run(ctx, host.Cmd{Argv: cli(kforgePath, "status", stateDir, "--json"), Sudo: true, ReadOnly: true})
	if err != nil {
		return r, wrap("status", err)
	}
	if err := json.Unmarshal(res.Stdout, &r); err != nil {
		return r, fmt.Errorf("supervisor status on %s: %w", h.Name(), err)
	}
	return r, nil
}

// cli is the argv of `kforge supervise SUB --state-dir DIR ARGS...`.
func cli(kforgePath, sub, stateDir string, args ...string) []string {
	return append([]string{kforgePath, "supervise", sub, "--state-dir", stateDir}, args...)
}

// timeout is def, or less when ctx ends sooner.
func timeout(ctx context.Context, def time.Duration) string {
	if dl, ok := ctx.Deadline(); ok {
		def = min(def, max(time.Until(dl).Truncate(time.Second), time.Second))
	}
	return def.String()
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("supervisor %s: %w", what, err)
}
