package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/supervisor"
)

func init() { commands = append(commands, newSupervise) }

// superviseOptions are the flags of `kforge supervise` and its commands.
type superviseOptions struct {
	stateDir string
	logDir   string
	services []string
}

// newSupervise is the hidden command behind kforge's own service
// supervisor, which kforge starts on hosts without systemd.
func newSupervise(*globalOptions) *cobra.Command {
	o := &superviseOptions{}
	cmd := &cobra.Command{
		Use:    "supervise",
		Short:  "Keep containerd and the kubelet running on hosts without systemd",
		Hidden: true,
		Args:   cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&o.stateDir, "state-dir", layout.SupervisorDir, "directory with services/, the lock and status files")
	// withTimeout makes c run f within its own --timeout.
	withTimeout := func(c *cobra.Command, def time.Duration, f func(context.Context) error) *cobra.Command {
		timeout := new(time.Duration)
		c.Args = cobra.NoArgs
		c.Flags().DurationVar(timeout, "timeout", def, "how long to wait")
		c.RunE = func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), *timeout)
			defer cancel()
			return f(ctx)
		}
		return c
	}
	run := &cobra.Command{
		Use:   "run",
		Short: "Run the supervisor in the foreground",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return supervisor.Run(c.Context(), supervisor.Config{StateDir: o.stateDir, LogDir: o.logDir})
		},
	}
	run.Flags().StringVar(&o.logDir, "log-dir", layout.LogDir, "directory for the services' logs")
	status := &cobra.Command{
		Use:   "status",
		Short: "Print the supervisor's and each service's state as JSON",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return json.NewEncoder(c.OutOrStdout()).Encode(supervisor.ReadStatus(o.stateDir))
		},
	}
	wait := withTimeout(&cobra.Command{Use: "wait", Short: "Wait until the supervisor runs and the named services are ready"}, 2*time.Minute,
		func(ctx context.Context) error { return supervisor.WaitRunning(ctx, o.stateDir, o.logDir, o.services) })
	wait.Flags().StringVar(&o.logDir, "log-dir", layout.LogDir, "where the supervisor's log is, to quote it when it is not running")
	wait.Flags().StringArrayVar(&o.services, "service", nil, "a service that must be running (repeatable)")
	cmd.AddCommand(run, status, wait,
		withTimeout(&cobra.Command{Use: "reload", Short: "Make the supervisor apply changed service files, and wait until it has"}, time.Minute,
			func(ctx context.Context) error { return supervisor.Reload(ctx, o.stateDir) }),
		withTimeout(&cobra.Command{Use: "stop", Short: "Stop every service and the supervisor"}, 2*time.Minute,
			func(ctx context.Context) error { return supervisor.Shutdown(ctx, o.stateDir) }),
	)
	return cmd
}
