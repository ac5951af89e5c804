package supervisor

import (
	"context"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// launchScript runs as `sh -c launchScript sh LOGDIR KFORGE supervise run
// ...`. Its stdin from /dev/null and output to LOGDIR/supervisor.log, the
// supervisor holds no pipe of the command that started it.
const launchScript = `mkdir -p -- "$1" && log="$1/supervisor.log" && shift && exec "$@" </dev/null >>"$log" 2>&1`

// Option changes how Start launches a supervisor: its log directory.
type Option func(logDir *string)

// WithLogDir puts the logs in dir instead of layout.LogDir.
func WithLogDir(dir string) Option { return func(logDir *string) { *logDir = dir } }

// Install writes s to stateDir/services/NAME.yaml on h. A running
// supervisor applies it when Start makes it reload.
func Install(ctx context.Context, h host.Host, stateDir string, s Service) error {
	data, err := yaml.Marshal(s)
	if err != nil {
		return err
	}
	return h.WriteFile(ctx, ServiceFile(stateDir, s.Name), data, layout.PublicMode)
}

// Uninstall removes the service called name from stateDir on h; the
// supervisor stops it when Start makes it reload.
func Uninstall(ctx context.Context, h host.Host, stateDir, name string) error {
	return h.Remove(ctx, ServiceFile(stateDir, name))
}

// Start makes h's supervisor for stateDir run the installed services: it
// tells a running one to reload and returns once it has applied the files;
// otherwise it launches `kforgePath supervise run` with `setsid -f` and
// returns once that has loaded them. For the services, see Wait.
func Start(ctx context.Context, h host.Host, kforgePath, stateDir string, opts ...Option) error {
	logDir := layout.LogDir
	for _, f := range opts {
		f(&logDir)
	}
	// No lock file means no supervisor, without running anything: a dry
	// run, whose files live elsewhere, records the launch.
	if ok, err := host.Exists(ctx, h, lockFile(stateDir)); err != nil {
		return err
	} else if ok {
		_, err := h.Run(ctx, host.Cmd{Argv: cli(kforgePath, "reload", stateDir, "--timeout", timeout(ctx, time.Minute)), Sudo: true})
		if err == nil || !strings.Contains(err.Error(), ErrNotRunning.Error()) {
			return err
		}
	}
	argv := append([]string{"setsid", "-f", "sh", "-c", launchScript, "sh", logDir},
		cli(kforgePath, "run", stateDir, "--log-dir", logDir)...)
	if _, err := h.Run(ctx, host.Cmd{Argv: argv, Sudo: true}); err != nil {
		return err
	}
	// Not ReadOnly: a dry run records it with the launch.
	_, err := h.Run(ctx, host.Cmd{Argv: cli(kforgePath, "wait", stateDir, "--log-dir", logDir, "--timeout", timeout(ctx, 30*time.Second)), Sudo: true})
	return err
}

// Wait waits until h's supervisor runs and each named service is running
// and ready; the error names those that are not, with their logs' end.
func Wait(ctx context.Context, h host.Host, kforgePath, stateDir string, services ...string) error {
	argv := cli(kforgePath, "wait", stateDir, "--timeout", timeout(ctx, 2*time.Minute))
	for _, s := range services {
		argv = append(argv, "--service", s)
	}
	_, err := h.Run(ctx, host.Cmd{Argv: argv, Sudo: true})
	return err
}

// Stop stops h's supervisor and its services and returns once they are
// gone. With no supervisor running it ends what a killed one left behind.
func Stop(ctx context.Context, h host.Host, kforgePath, stateDir string) error {
	_, err := h.Run(ctx, host.Cmd{Argv: cli(kforgePath, "stop", stateDir, "--timeout", timeout(ctx, 2*time.Minute)), Sudo: true})
	return err
}

// cli is the argv of `kforge supervise SUB --state-dir DIR ARGS...`.
func cli(kforgePath, sub, stateDir string, args ...string) []string {
	return append([]string{kforgePath, "supervise", sub, "--state-dir", stateDir}, args...)
}

// timeout is def, or less when ctx ends sooner, so that the command on the
// host fails with its own message first.
func timeout(ctx context.Context, def time.Duration) string {
	if dl, ok := ctx.Deadline(); ok {
		def = min(def, max(time.Until(dl).Truncate(time.Second), time.Second))
	}
	return def.String()
}
