package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/supervisor"
)

func init() { commands = append(commands, newSupervise) }

// superviseOptions are the flags of `kforge supervise` and its commands.
// The parent's holds --state-dir; each command binds its own flags to a
// value of its own, so that their defaults do not overwrite each other.
type superviseOptions struct {
	stateDir string
	logDir   string
	timeout  time.Duration
	json     bool
	services []string
}

// newSupervise is the hidden command behind kforge's own service
// supervisor, which kforge starts on hosts without systemd.
func newSupervise(*globalOptions) *cobra.Command {
	g := &superviseOptions{}
	cmd := &cobra.Command{
		Use:    "supervise",
		Short:  "Keep containerd and the kubelet running on hosts without systemd",
		Hidden: true,
		Args:   cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&g.stateDir, "state-dir", supervisor.DefaultStateDir, "directory with services/, the pid, lock and status files")
	cmd.AddCommand(
		superviseRun(g), superviseStatus(g), superviseReload(g), superviseStop(g), superviseWait(g),
	)
	return cmd
}

func superviseRun(g *superviseOptions) *cobra.Command {
	o := &superviseOptions{}
	c := &cobra.Command{
		Use:   "run",
		Short: "Run the supervisor in the foreground",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return supervisor.Run(cmd.Context(), supervisor.Config{StateDir: g.stateDir, LogDir: o.logDir, Log: cmd.ErrOrStderr()})
		},
	}
	c.Flags().StringVar(&o.logDir, "log-dir", supervisor.DefaultLogDir, "directory for the services' logs")
	return c
}

func superviseStatus(g *superviseOptions) *cobra.Command {
	o := &superviseOptions{}
	c := &cobra.Command{
		Use:   "status",
		Short: "Print the supervisor's and each service's state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := supervisor.ReadReport(g.stateDir)
			if err != nil {
				return err
			}
			if o.json {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(r)
			}
			return r.Write(cmd.OutOrStdout())
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON")
	return c
}

func superviseReload(g *superviseOptions) *cobra.Command {
	o := &superviseOptions{}
	c := &cobra.Command{
		Use:   "reload",
		Short: "Make the supervisor apply changed service files, and wait until it has",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			return supervisor.SendReload(ctx, g.stateDir)
		},
	}
	c.Flags().DurationVar(&o.timeout, "timeout", time.Minute, "how long to wait for the reload")
	return c
}

func superviseStop(g *superviseOptions) *cobra.Command {
	o := &superviseOptions{}
	c := &cobra.Command{
		Use:   "stop",
		Short: "Stop every service and the supervisor",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			return supervisor.Shutdown(ctx, g.stateDir)
		},
	}
	c.Flags().DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long services may take to stop before they are killed")
	return c
}

func superviseWait(g *superviseOptions) *cobra.Command {
	o := &superviseOptions{}
	c := &cobra.Command{
		Use:   "wait",
		Short: "Wait until the supervisor runs and the named services are ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			return supervisor.WaitRunning(ctx, g.stateDir, o.logDir, o.services)
		},
	}
	c.Flags().StringVar(&o.logDir, "log-dir", "", "where the supervisor's log is, to quote it when it is not running")
	c.Flags().StringArrayVar(&o.services, "service", nil, "a service that must be running (repeatable)")
	c.Flags().DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long to wait")
	return c
}
