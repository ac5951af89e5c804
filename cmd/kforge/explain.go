package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
)

func init() { commands = append(commands, newExplain) }

func newExplain(g *globalOptions) *cobra.Command {
	o := cluster.ExplainOptions{}
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "explain [deployment|pod NAME]",
		Short: "Explain your cluster part by part, or how a Deployment or Pod became running containers",
		Long: "Without arguments: a map of the cluster's architecture filled with its live facts: etcd (its data directory and size),\n" +
			"the API server (its address and how it authenticates and authorizes), the scheduler, the controller manager, the kubelet\n" +
			"on each node, the container runtime behind CRI, the pod network behind CNI with each node's pod CIDR, storage, kube-proxy\n" +
			"and Services, and CoreDNS.\n\n" +
			"With deployment NAME or pod NAME: each step from the stored object to running, reachable containers (the ReplicaSet,\n" +
			"the Pods, the scheduler's binding, the kubelet and the runtime, the pod's IP from CNI, the Service endpoints), with its\n" +
			"time and the records that show it: events, owner references, conditions and EndpointSlices.\n\n" +
			"--lang zh (or a zh_* locale) prints it in Simplified Chinese.",
		Example: "  kforge explain\n  kforge explain deployment web\n  kforge explain pod web-5d9c7b6f4-x2x8q -n shop --lang zh",
		Args:    cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch len(args) {
			case 1:
				return fmt.Errorf("kforge explain %s needs a name: kforge explain %s NAME", args[0], args[0])
			case 2:
				o.Kind, o.Name = args[0], args[1]
			}
			p, err := g.printer()
			if err != nil {
				return err
			}
			o.Printer, o.JSON, o.Out = p, output == "json", cmd.OutOrStdout()
			return cluster.Explain(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Namespace, "namespace", "n", "default", "the object's namespace")
	f.StringVarP(&o.ConfigFile, "config", "f", "", "ask this cluster file's control plane, over SSH (default: this machine)")
	f.VarP(&output, "output", "o", "text: for people; json: one JSON document")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	return cmd
}
