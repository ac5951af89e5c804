package main

import (
	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/phases"
)

func init() { commands = append(commands, newReset) }

func newReset(g *globalOptions) *cobra.Command {
	o := cluster.ResetOptions{}
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Undo kforge init, join or up: on this machine, on one host over SSH, or on every host of a cluster file",
		Long: "Remove this machine's Kubernetes node: stop the kubelet, remove every pod's containers, stop containerd and kforge's supervisor,\n" +
			"unmount the kubelet's mounts, remove /etc/kubernetes, /var/lib/kubelet, /var/lib/etcd, the CNI config and interfaces,\n" +
			"the iptables chains of kube-proxy and the CNI, and the kforge context from your kubeconfig.\n\nPhases:\n" + phases.Tree(phases.Reset()),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := atLeastOne("parallel", o.Parallel); err != nil {
				return err
			}
			o.Out = g.reporter(cmd)
			o.In = cmd.InOrStdin()
			return finish(o.Out, cluster.Reset(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Force, "force", false, "reset without asking")
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig to remove the kforge context from (default: $KUBECONFIG or ~/.kube/config)")
	f.StringSliceVar(&o.SkipPhases, "skip-phases", nil, "phases to leave out")
	f.StringVarP(&o.ConfigFile, "config", "f", "", "reset every host of this cluster file, in parallel")
	f.StringVar(&o.SSH, "ssh", "", "reset one host, [user@]host[:port], after draining and deleting its node")
	f.StringVar(&o.AdminKubeconfig, "admin-kubeconfig", layout.AdminConf, "kubeconfig used to drain and delete the node of --ssh")
	f.IntVar(&o.Parallel, "parallel", 5, "how many hosts to reset at once")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	addSSHFlags(cmd, &o.Target)
	addOutputFlag(cmd, g)
	return cmd
}

// addSSHFlags registers the SSH settings of a host named with --ssh.
func addSSHFlags(cmd *cobra.Command, o *cluster.SSHOptions) {
	f := cmd.Flags()
	f.StringVar(&o.KeyPath, "ssh-key", "", "private key for --ssh (default: the agent, then ~/.ssh/id_*)")
	f.StringVar(&o.KnownHosts, "known-hosts", "", "known_hosts file for --ssh (default ~/.ssh/known_hosts)")
	f.StringVar(&o.SudoPasswordFrom, "sudo-password-from", "", "env:NAME or file:PATH holding the sudo password of a non-root --ssh user")
	f.StringVar(&o.JumpHost, "ssh-jump", "", "[user@]host[:port] of a jump host for --ssh")
}
