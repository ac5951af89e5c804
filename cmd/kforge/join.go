package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/phases"
)

func init() { commands = append(commands, newJoin) }

func newJoin(g *globalOptions) *cobra.Command {
	o := cluster.JoinOptions{}
	push := cluster.JoinSSHOptions{}
	var stopOnStdinEOF, tokenStdin bool
	cmd := &cobra.Command{
		Use:   "join ENDPOINT --token TOKEN --discovery-token-ca-cert-hash sha256:HASH",
		Short: "Join this machine to a cluster as a worker node",
		Long: "Join this machine to the cluster whose API server is at ENDPOINT (host:port) as a worker, as kubeadm join does:\n" +
			"verify the cluster with the bootstrap token's signature on cluster-info and the CA hash, then start the kubelet,\n" +
			"which gets its client certificate by TLS bootstrap. kforge init prints the command to run. A join that fails after\n" +
			"discovery on a machine that had not joined before undoes what it set up.\n\nPhases:\n" +
			phases.Tree(phases.Join()) +
			"\nRun one phase with `kforge join phase NAME ENDPOINT ...`; leave some out with --skip-phases a,b.",
		Args: func(cmd *cobra.Command, args []string) error {
			if push.Target != "" {
				return cobra.NoArgs(cmd, args)
			}
			if push.ControlPlane {
				return fmt.Errorf("--control-plane joins a control plane from a running one: kforge join --control-plane --ssh user@host, run on a control plane (or list it in the cluster file and run kforge init -f)")
			}
			return endpointArg(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Out = g.reporter(cmd)
			in := bufio.NewReader(cmd.InOrStdin())
			if tokenStdin {
				if o.Token != "" {
					return fmt.Errorf("--token and --%s both give the token: use one", phases.TokenStdinFlag)
				}
				t, err := readTokenLine(in)
				if err != nil {
					return err
				}
				o.Token = t
			}
			if stopOnStdinEOF {
				cmd.SetContext(cancelOnEOF(cmd.Context(), in))
			}
			if push.Target != "" {
				push.Out, push.Bundle, push.Trust, push.IgnorePreflight = o.Out, o.Bundle, o.Trust, o.IgnorePreflight
				return finish(o.Out, cluster.JoinSSH(cmd.Context(), push))
			}
			o.Endpoint = args[0]
			return finish(o.Out, cluster.Join(cmd.Context(), o))
		},
	}
	addJoinFlags(cmd, &o)
	addOutputFlag(cmd, g)
	cmd.Flags().BoolVar(&stopOnStdinEOF, cluster.StopOnStdinEOFFlag, false, "stop when standard input closes (kforge init -f runs joins so, over SSH: a dropped connection stops the join)")
	_ = cmd.Flags().MarkHidden(cluster.StopOnStdinEOFFlag)
	cmd.Flags().StringVar(&o.ArtifactsFrom, cluster.ArtifactsFromFlag, "", "fetch the worker's binaries and images from this control plane's artifact server (https://HOST:PORT), checked against the bundle's signed manifest (kforge init -f runs joins so)")
	_ = cmd.Flags().MarkHidden(cluster.ArtifactsFromFlag)
	cmd.Flags().BoolVar(&tokenStdin, phases.TokenStdinFlag, false, "read the bootstrap token from the first line of standard input, so that it is on no command line (kforge init -f joins workers so)")
	cmd.Flags().StringVar(&push.Target, "ssh", "", "run on the control plane: join [user@]host[:port] over SSH with a token minted here (no ENDPOINT or token needed)")
	cmd.Flags().BoolVar(&push.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time (with --ssh)")
	cmd.Flags().BoolVar(&push.ControlPlane, "control-plane", false, "with --ssh: join the host as a further control plane (its etcd as a learner, promoted once caught up), the cluster's CAs and keys copied over SSH")
	addSSHFlags(cmd, &push.SSH)
	cmd.Flags().StringSliceVar(&o.SkipPhases, "skip-phases", nil, "phases to leave out, e.g. preflight")
	cmd.AddCommand(newJoinPhaseCommands(g, &o))
	return cmd
}

// endpointArg requires the one ENDPOINT argument.
func endpointArg(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("kforge join takes the API server's endpoint, one argument (got %d): kforge join HOST:PORT --token TOKEN --discovery-token-ca-cert-hash sha256:HASH", len(args))
	}
	return nil
}

// addJoinFlags registers the flags of join and its phase commands, with
// kubeadm join's names where kubeadm has the setting.
func addJoinFlags(cmd *cobra.Command, o *cluster.JoinOptions) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.Token, "token", "", "bootstrap token (id.secret) for discovery and TLS bootstrap")
	f.StringSliceVar(&o.CACertHashes, "discovery-token-ca-cert-hash", nil, "sha256:HASH of the cluster CA's public key, as kforge init prints it; required unless --discovery-token-unsafe-skip-ca-verification")
	f.BoolVar(&o.UnsafeSkipCAVerification, "discovery-token-unsafe-skip-ca-verification", false, "trust the CA that the token's signature vouches for without a pinned hash")
	f.DurationVar(&o.DiscoveryTimeout, "discovery-timeout", discovery.DefaultTimeout, "how long discovery may take, retries included")
	f.StringVar(&o.NodeName, "node-name", "", "node name (default: the hostname)")
	f.StringVar(&o.NodeIP, "node-ip", "", "IP the kubelet advertises (default: the address of the default route)")
	f.StringVar(&o.Bundle, "bundle", "", "kforge bundle with the binaries and images to install (make artifacts builds one)")
	addTrustFlags(f, &o.Trust)
	f.StringSliceVar(&o.IgnorePreflight, "ignore-preflight-errors", nil, "preflight checks whose failure is only a warning, e.g. Port-10250 (or all)")
}

// newJoinPhaseCommands builds `kforge join phase NAME ENDPOINT` from the
// phase list.
func newJoinPhaseCommands(g *globalOptions, o *cluster.JoinOptions) *cobra.Command {
	parent := &cobra.Command{
		Use:   "phase",
		Short: "Run one phase of join",
		Long:  "Run one phase of join:\n\n" + strings.TrimRight(phases.Tree(phases.Join()), "\n"),
		Args:  cobra.ArbitraryArgs,
		RunE:  unknownPhase("join", phases.Join()),
	}
	for _, p := range phases.Join() {
		name := p.Name
		parent.AddCommand(&cobra.Command{
			Use:   name + " ENDPOINT",
			Short: p.Short,
			Args:  endpointArg,
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Out = g.reporter(cmd)
				o.Endpoint = args[0]
				o.Phase = name
				return finish(o.Out, cluster.Join(cmd.Context(), *o))
			},
		})
	}
	return parent
}

// readTokenLine reads the token from the first line of in.
func readTokenLine(in *bufio.Reader) (string, error) {
	line, err := in.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", fmt.Errorf("--%s: no token on standard input (%v): pipe it in, e.g. kforge join ... --%s < tokenfile", phases.TokenStdinFlag, err, phases.TokenStdinFlag)
	}
	return strings.TrimSpace(line), nil
}

// cancelOnEOF returns a context that ends when in reaches its end: the SSH
// session of the kforge that started this one is gone.
func cancelOnEOF(ctx context.Context, in io.Reader) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		_, _ = io.Copy(io.Discard, in)
		cancel(errors.New("standard input closed: the kforge that started this join is gone"))
	}()
	return ctx
}
