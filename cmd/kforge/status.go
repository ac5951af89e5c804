package main

import (
	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
)

func init() { commands = append(commands, newStatus) }

func newStatus(g *globalOptions) *cobra.Command {
	o := cluster.StatusOptions{}
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster at a glance: nodes, the control plane and where its configuration and logs are, etcd, certificates",
		Long: "Read the cluster's state from its control plane (this machine, or the cluster file's over SSH): every node with its roles,\n" +
			"version, Ready condition and its kubelet's /healthz (asked through the API server); each control-plane component with how it\n" +
			"runs, its health endpoint's answer, its configuration file and its log; containerd and the kubelet; etcd's members and leader;\n" +
			"and when the certificates expire. Exits non-zero, naming them, when something is not healthy.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.printer()
			if err != nil {
				return err
			}
			o.JSON, o.Printer, o.Out = output == "json", p, cmd.OutOrStdout()
			return cluster.ClusterStatus(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigFile, "config", "f", "", "ask this cluster file's control plane, over SSH (default: this machine)")
	f.VarP(&output, "output", "o", "text: sections for people; json: one JSON document")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	return cmd
}
