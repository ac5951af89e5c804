package main

import (
	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
	"kforge.dev/kforge/phases"
)

func init() { commands = append(commands, newReset) }

func newReset(g *globalOptions) *cobra.Command {
	o := cluster.ResetOptions{}
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Undo kforge init, join or up on this machine",
		Long: "Remove this machine's Kubernetes node: stop the kubelet, remove every pod's containers, stop containerd and kforge's supervisor,\n" +
			"unmount the kubelet's mounts, remove /etc/kubernetes, /var/lib/kubelet, /var/lib/etcd, the CNI config and interfaces,\n" +
			"the iptables chains of kube-proxy and the CNI, and the kforge context from your kubeconfig.\n\nPhases:\n" + phases.Tree(phases.Reset()),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = g.reporter(cmd)
			o.In = cmd.InOrStdin()
			return cluster.Reset(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.Force, "force", "f", false, "reset without asking")
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig to remove the kforge context from (default: $KUBECONFIG or ~/.kube/config)")
	f.StringSliceVar(&o.SkipPhases, "skip-phases", nil, "phases to leave out")
	return cmd
}
