package main

import (
	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
)

func init() { commands = append(commands, newDoctor) }

func newDoctor(g *globalOptions) *cobra.Command {
	o := cluster.DoctorOptions{}
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Look for the usual causes of a broken cluster on this machine (or every host) and name each with what to do",
		Long: "Check this machine, or every host of a cluster file over SSH, for: swap on; ip_forward or bridge netfilter off; the kubelet's\n" +
			"and containerd's cgroup drivers differing; the CRI socket not answering; kforge's ports held by another program; a clock off this\n" +
			"machine's; certificates expired or expiring within 30 days; /var/lib nearly full. Through the control plane, check the cluster for:\n" +
			"kubelets that stopped reporting, nodes under disk pressure, pods waiting for an image no node has, and no ready cluster DNS.\n" +
			"Exits non-zero when it finds something.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.JSON = output == "json"
			if err := atLeastOne("parallel", o.Parallel); err != nil {
				return err
			}
			p, err := g.printer()
			if err != nil {
				return err
			}
			o.Printer, o.Out = p, cmd.OutOrStdout()
			return cluster.Doctor(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigFile, "config", "f", "", "check every host of this cluster file over SSH, and the cluster through its control plane")
	f.VarP(&output, "output", "o", "text: a finding per paragraph; json: one JSON document")
	f.IntVar(&o.Parallel, "parallel", cluster.DefaultParallel, "how many hosts to check at once")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	return cmd
}
