package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/images"
)

func init() { commands = append(commands, newUp) }

func newUp(g *globalOptions) *cobra.Command {
	o := cluster.UpOptions{}
	var localFlag bool
	cmd := &cobra.Command{
		Use:   "up --local",
		Short: "Start a single-node development cluster on this machine",
		Long: "Build a single-node cluster on this machine in one command: kforge init with local defaults and a schedulable node,\n" +
			"then a \"kforge\" context in your kubeconfig. Run it again on a healthy cluster and nothing changes.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !localFlag {
				return fmt.Errorf("kforge up needs --local (a cluster on this machine); for clusters on other hosts use kforge init -f cluster.yaml")
			}
			o.Out = g.reporter(cmd)
			return finish(o.Out, cluster.Up(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.BoolVar(&localFlag, "local", false, "build the cluster on this machine")
	f.StringVarP(&o.ConfigFile, "config", "f", "", "cluster file with this machine as its one host, e.g. for registries or add-ons (default: kforge's defaults)")
	f.StringVar(&o.Bundle, "bundle", "", "kforge bundle with the binaries and images to install (default: the newest one make artifacts left in ~/.cache/kforge)")
	addTrustFlags(f, &o.Trust)
	f.BoolVar(&o.DryRun, "dry-run", false, "write every file under --output-dir and print the plan; change nothing")
	f.StringVar(&o.OutputDir, "output-dir", "", "where --dry-run writes files (default: a new temporary directory)")
	f.StringVar(&o.Overrides.KubernetesVersion, "kubernetes-version", "", "Kubernetes version: "+strings.Join(images.Supported(), ", ")+" (default: the version the cluster on this machine runs, else "+config.DefaultKubernetesVersion+"); a newer one than it runs upgrades it in place")
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig to add the kforge context to (default: $KUBECONFIG or ~/.kube/config)")
	f.StringSliceVar(&o.IgnorePreflight, "ignore-preflight-errors", nil, "preflight checks whose failure is only a warning (or all)")
	f.StringSliceVar(&o.SkipPhases, "skip-phases", nil, "init phases to leave out")
	addOutputFlag(cmd, g)
	return cmd
}
