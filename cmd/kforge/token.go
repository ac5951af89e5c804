package main

import (
	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/reporter"
)

func init() { commands = append(commands, newToken) }

func newToken(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Bootstrap tokens for joining nodes",
	}
	o := cluster.TokenCreateOptions{}
	create := &cobra.Command{
		Use:   "create",
		Short: "Mint a bootstrap token on the control plane and print it, or the whole join command",
		Long: "Mint a bootstrap token on the control plane (this machine, or the cluster file's over SSH) and print it on standard output;\n" +
			"with --print-join-command, the kforge join command that uses it, pinning the cluster CA. The token expires after --ttl.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Standard output carries the token or command alone, for
			// scripts; everything else goes to standard error.
			o.Out = cmd.OutOrStdout()
			o.Log = reporter.New(cmd.ErrOrStderr(), nil, true)
			return cluster.TokenCreate(cmd.Context(), o)
		},
	}
	f := create.Flags()
	f.StringVarP(&o.ConfigFile, "config", "f", "", "mint the token on this cluster file's control plane, over SSH")
	f.DurationVar(&o.TTL, "ttl", phases.BootstrapTokenTTL, "how long the token lasts (at most 168h)")
	f.BoolVar(&o.PrintJoinCommand, "print-join-command", false, "print the kforge join command, not only the token")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	cmd.AddCommand(create)
	return cmd
}
