package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/phases"
)

func newInit(g *globalOptions) *cobra.Command {
	o := cluster.InitOptions{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Build a control plane on this machine or on the cluster file's control-plane host",
		Long: "Build a Kubernetes control plane. Without -f, this machine becomes a single control-plane node.\n\nPhases:\n" +
			phases.Tree(phases.Init()) +
			"\nRun one phase with `kforge init phase NAME`; leave some out with --skip-phases a,b.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := atLeastOne("parallel", o.Parallel); err != nil {
				return err
			}
			o.Out = g.reporter(cmd)
			return finish(o.Out, cluster.Init(cmd.Context(), o))
		},
	}
	addInitFlags(cmd, &o)
	addOutputFlag(cmd, g)
	cmd.Flags().IntVar(&o.Parallel, "parallel", cluster.DefaultParallel, "how many workers to join at once")
	cmd.Flags().StringVar(&o.KubeconfigOut, "kubeconfig-out", "", "also write the admin kubeconfig here (0600), e.g. when init runs from another machine")
	cmd.Flags().BoolVar(&o.MergeKubeconfig, "merge-kubeconfig", false, "add a \"kforge\" context to your kubeconfig ($KUBECONFIG or ~/.kube/config; under sudo, the invoking user's, owned by them), as up --local does")
	cmd.Flags().StringSliceVar(&o.SkipPhases, "skip-phases", nil, "phases to leave out, e.g. preflight,mark-control-plane (kforge init phase --help lists them)")
	cmd.AddCommand(newPhaseCommands(g, &o))
	return cmd
}

// addInitFlags registers the flags shared by init and its phase commands.
// Names follow kubeadm where kubeadm has the same setting.
func addInitFlags(cmd *cobra.Command, o *cluster.InitOptions) {
	f := cmd.PersistentFlags()
	f.StringVarP(&o.ConfigFile, "config", "f", "", "cluster file (kforge.yaml); default: this machine as a single node")
	f.StringVar(&o.Bundle, "bundle", "", "kforge bundle with the binaries and images to install (make artifacts builds one)")
	addTrustFlags(f, &o.Trust)
	f.BoolVar(&o.DryRun, "dry-run", false, "write every file under --output-dir and print the plan; change nothing on the host")
	f.StringVar(&o.OutputDir, "output-dir", "", "where --dry-run writes files, mirroring host paths (default: a new temporary directory)")
	f.StringVar(&o.Overrides.KubernetesVersion, "kubernetes-version", "", "Kubernetes version: "+strings.Join(images.Supported(), ", ")+" (default from the cluster file, else "+config.DefaultKubernetesVersion+")")
	f.StringVar(&o.Overrides.PodSubnet, "pod-network-cidr", "", "pod subnet")
	f.StringVar(&o.Overrides.ServiceSubnet, "service-cidr", "", "service subnet")
	f.StringVar(&o.Overrides.DNSDomain, "service-dns-domain", "", "cluster DNS domain")
	f.StringVar(&o.Overrides.AdvertiseAddress, "apiserver-advertise-address", "", "IP the API server advertises (default: the address of the default route)")
	f.StringVar(&o.Overrides.ControlPlaneEndpoint, "control-plane-endpoint", "", "host[:port] clients use to reach the API server")
	f.StringVar(&o.Overrides.NodeName, "node-name", "", "node name (default: the hostname)")
	f.StringSliceVar(&o.Overrides.CertSANs, "apiserver-cert-extra-sans", nil, "extra names and IPs for the API server certificate")
	f.StringVar(&o.Overrides.CertAlgorithm, "cert-algorithm", "", "ECDSA-P256 or RSA-2048")
	f.StringSliceVar(&o.IgnorePreflight, "ignore-preflight-errors", nil, "preflight checks whose failure is only a warning, e.g. Port-6443,NumCPU (or all)")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time (a changed key is always refused)")
}

// newPhaseCommands builds `kforge init phase NAME [CHILD]` from the phase
// list, so the commands and the list cannot drift apart.
func newPhaseCommands(g *globalOptions, o *cluster.InitOptions) *cobra.Command {
	parent := &cobra.Command{
		Use:   "phase",
		Short: "Run one phase of init",
		Args:  cobra.ArbitraryArgs,
		RunE:  unknownPhase("init", phases.Init()),
	}
	var add func(cmd *cobra.Command, prefix string, list []phases.Phase)
	add = func(cmd *cobra.Command, prefix string, list []phases.Phase) {
		for _, p := range list {
			name := prefix + p.Name
			sub := &cobra.Command{
				Use:   p.Name,
				Short: p.Short,
				Args:  cobra.NoArgs,
				RunE: func(cmd *cobra.Command, _ []string) error {
					o.Out = g.reporter(cmd)
					o.Phase = name
					return finish(o.Out, cluster.Init(cmd.Context(), *o))
				},
			}
			if len(p.Children) > 0 {
				sub.Long = p.Short + "\n\nPhases:\n" + phases.Tree(p.Children)
				sub.Args = cobra.ArbitraryArgs
				sub.RunE = unknownPhase("init phase "+name, p.Children)
			}
			add(sub, name+"/", p.Children)
			cmd.AddCommand(sub)
		}
	}
	add(parent, "", phases.Merged(phases.Init()))
	parent.Long = "Run one phase of init:\n\n" + strings.TrimRight(phases.Tree(phases.Init()), "\n")
	return parent
}

// unknownPhase is the run function of a command whose subcommands are
// phases: with no argument it prints its help; with one that is not a
// phase it fails, naming the phases.
func unknownPhase(command string, list []phases.Phase) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		var names []string
		for _, p := range phases.Merged(list) {
			names = append(names, p.Name)
		}
		return fmt.Errorf("kforge %s: no phase %q; the phases are %s", command, args[0], strings.Join(names, ", "))
	}
}

// atLeastOne refuses a count flag below 1.
func atLeastOne(flag string, n int) error {
	if n < 1 {
		return fmt.Errorf("--%s %d: give a number of hosts, 1 or more", flag, n)
	}
	return nil
}
