package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/reporter"
)

// globalOptions are flags every command shares.
type globalOptions struct {
	plain   bool
	verbose bool
}

func (g *globalOptions) reporter(cmd *cobra.Command) *reporter.Reporter {
	var log io.Writer
	if g.verbose {
		log = cmd.ErrOrStderr()
	}
	return reporter.New(cmd.OutOrStdout(), log, g.plain || os.Getenv("CI") != "")
}

func newRoot() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:           "kforge",
		Short:         "Bootstrap upstream Kubernetes clusters",
		Long:          "kforge builds upstream Kubernetes clusters on your machines: the PKI, the control plane as static pods, containerd, the kubelet and the network, from binaries and images it can carry into air-gapped sites.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVar(&g.plain, "plain", false, "plain output, one line per step (the default when stdout is not a terminal)")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log details to stderr")
	root.AddCommand(newInit(g), newConfig(), newVersion())
	for _, c := range commands {
		root.AddCommand(c(g))
	}
	return root
}

// commands are the constructors of further top-level commands; each
// command's file adds its own in an init function.
var commands []func(*globalOptions) *cobra.Command
