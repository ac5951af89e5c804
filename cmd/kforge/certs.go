package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
)

func init() { commands = append(commands, newCerts) }

func newCerts(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Certificates of the cluster's nodes",
	}
	cmd.AddCommand(newCertsCheckExpiration(g))
	return cmd
}

func newCertsCheckExpiration(g *globalOptions) *cobra.Command {
	o := cluster.CertsCheckOptions{}
	var output string
	cmd := &cobra.Command{
		Use:   "check-expiration",
		Short: "List every certificate of this machine (or of every host of a cluster file) with its expiry",
		Long: "List the cluster CAs, the certificates under /etc/kubernetes/pki, the client certificates in the kubeconfigs and the kubelet's\n" +
			"client and serving certificates, with when each expires, the time left, its signer and who renews it (kforge, the kubelet, or nobody).\n" +
			"Exits non-zero, naming them, when one expires within --warn-within or cannot be read.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "text":
			case "json":
				o.JSON = true
			default:
				return fmt.Errorf("--output %q: use text or json", output)
			}
			if err := atLeastOne("parallel", o.Parallel); err != nil {
				return err
			}
			if o.WarnWithin < 0 {
				return fmt.Errorf("--warn-within %s is negative", o.WarnWithin)
			}
			o.Out = cmd.OutOrStdout()
			return cluster.CertsCheck(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigFile, "config", "f", "", "check every host of this cluster file, over SSH")
	f.StringVarP(&output, "output", "o", "text", "text: a table per host; json: one JSON document")
	f.DurationVar(&o.WarnWithin, "warn-within", cluster.DefaultWarnWithin, "fail when a certificate expires sooner than this")
	f.IntVar(&o.Parallel, "parallel", cluster.DefaultParallel, "how many hosts to check at once")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	return cmd
}
