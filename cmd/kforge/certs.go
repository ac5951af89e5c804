package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
	"kforge.dev/kforge/renewal"
)

func init() { commands = append(commands, newCerts) }

func newCerts(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Certificates of the cluster's nodes",
	}
	cmd.AddCommand(newCertsCheckExpiration(g), newCertsRenew(g))
	return cmd
}

func newCertsCheckExpiration(g *globalOptions) *cobra.Command {
	o := cluster.CertsCheckOptions{}
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "check-expiration",
		Short: "List every certificate of this machine (or of every host of a cluster file) with its expiry",
		Long: "List the cluster CAs, the certificates under /etc/kubernetes/pki, the client certificates in the kubeconfigs and the kubelet's\n" +
			"client and serving certificates, with when each expires, the time left, its signer and who renews it (kforge, the kubelet, or nobody).\n" +
			"Exits non-zero, naming them, when one expires within --warn-within or cannot be read.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.JSON = output == "json"
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
	f.VarP(&output, "output", "o", "text: a table per host; json: one JSON document")
	f.DurationVar(&o.WarnWithin, "warn-within", cluster.DefaultWarnWithin, "fail when a certificate expires sooner than this")
	f.IntVar(&o.Parallel, "parallel", cluster.DefaultParallel, "how many hosts to check at once")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	return cmd
}

func newCertsRenew(g *globalOptions) *cobra.Command {
	o := cluster.CertsRenewOptions{}
	cmd := &cobra.Command{
		Use:   "renew all|NAME...|--expiring-within DURATION",
		Short: "Re-issue the control plane's certificates and kubeconfigs from the cluster's CAs, then restart what reads them",
		Long: "Re-issue leaf certificates and the kubeconfigs' client certificates from the existing CAs, with the same subjects and SANs and a new\n" +
			"key each, valid for the cluster file's certs.validity from now; then restart the static pods that read them, one at a time, each\n" +
			"healthy before the next. Nothing is written unless every named certificate can be renewed. The CAs, the service-account keys and\n" +
			"the key that encrypts Secrets are never touched. NAME is one of: " + strings.Join(renewal.Names(), ", ") + ".\n" +
			"--apiserver-cert-extra-sans (and the cluster file's certs.extraSANs) add names to the API server's certificate in place.\n" +
			"--expiring-within renews only what expires within that time, and nothing when nothing does: the job certs.autoRenew installs runs it.\n" +
			"Each renewal, and each failed one, is recorded as an Event on the control plane's Node.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && o.ExpiringWithin == 0 {
				return fmt.Errorf("name what to renew (all, or one or more of %s), or pass --expiring-within", strings.Join(renewal.Names(), ", "))
			}
			if o.ExpiringWithin < 0 || o.Validity < 0 {
				return fmt.Errorf("--expiring-within and --validity must be positive")
			}
			o.Names = args
			o.Out = g.reporter(cmd)
			return finish(o.Out, cluster.CertsRenew(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigFile, "config", "f", "", "renew on each of this cluster file's control planes in turn, over SSH (its certs.validity and certs.extraSANs apply)")
	f.StringSliceVar(&o.APIServerExtraSANs, "apiserver-cert-extra-sans", nil, "names and IPs to add to the API server's certificate")
	f.DurationVar(&o.ExpiringWithin, "expiring-within", 0, "renew only the certificates that expire within this time (instead of naming them)")
	f.DurationVar(&o.Validity, "validity", 0, "how long the new certificates last (default: the cluster file's certs.validity)")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	addOutputFlag(cmd, g)
	return cmd
}
