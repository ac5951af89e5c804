package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/reporter"
)

// JoinOptions are the inputs of `kforge join`.
type JoinOptions struct {
	// Endpoint is the API server, host:port.
	Endpoint string
	// ArtifactsFrom is a control plane's artifact server
	// (https://host:port) to fetch the worker's part of the bundle from,
	// instead of --bundle (init -f and join --ssh pass it).
	ArtifactsFrom string
	// Token is the bootstrap token, id.secret.
	Token string
	// CACertHashes pin the cluster CA (sha256:<hex>); they are required
	// unless UnsafeSkipCAVerification.
	CACertHashes             []string
	UnsafeSkipCAVerification bool
	// DiscoveryTimeout bounds discovery; discovery.DefaultTimeout when
	// zero.
	DiscoveryTimeout time.Duration
	// NodeName is the node's name (default: the hostname); NodeIP the
	// address the kubelet advertises (default: the default route's).
	NodeName string
	NodeIP   string
	// Bundle is a kforge bundle to install binaries and images from.
	Bundle string
	Trust  Trust
	// IgnorePreflight turns the named preflight failures into warnings.
	IgnorePreflight []string
	Connect         ConnectOptions
	// Phase runs only this phase; SkipPhases leaves some out.
	Phase      string
	SkipPhases []string
	Out        *reporter.Reporter
}

// cleanupTimeout bounds undoing a failed join.
const cleanupTimeout = 3 * time.Minute

// Join makes this machine a worker of the cluster at o.Endpoint. The
// arguments are checked before anything else; discovery runs before
// anything is installed. When a later phase fails on a machine that had
// not joined before, Join undoes what the join set up (JoinCleanup), so
// that the machine is clean for another try.
func Join(ctx context.Context, o JoinOptions) error {
	list := phases.Join()
	if err := phases.Check(list, "--skip-phases", o.SkipPhases...); err != nil {
		return err
	}
	disc, err := joinDiscoveryOptions(o)
	if err != nil {
		return err
	}
	if disc.UnsafeSkipCAVerification && len(disc.CACertHashes) == 0 {
		o.Out.Infof("  ! --discovery-token-unsafe-skip-ca-verification: the cluster's CA is not pinned, so whoever answers at %s with this token's signature is trusted as the cluster; pin it with --discovery-token-ca-cert-hash sha256:HASH (kforge init prints it)", o.Endpoint)
	}
	c := config.Default()
	c.Hosts = []config.Host{{Role: config.RoleWorker, Local: true, Name: o.NodeName, NodeIP: o.NodeIP}}
	if o.Bundle != "" && o.ArtifactsFrom != "" {
		return fmt.Errorf("--bundle and --%s: give one of them", ArtifactsFromFlag)
	}
	if o.Bundle != "" {
		b := config.ExpandHome(o.Bundle)
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("--bundle: %w (make artifacts builds one and prints its path)", err)
		}
		c.Artifacts.Bundle = b
	}
	if err := o.Trust.Apply(c); err != nil {
		return err
	}
	node := c.Hosts[0]
	h, err := Connect(ctx, node, o.Connect)
	if err != nil {
		return err
	}
	defer h.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	d, err := phases.New(ctx, phases.Config{
		Command: "join", Cluster: c, Node: node, Host: h, Out: o.Out,
		KforgeBinary: self, StagingDir: stagingDir(), IgnorePreflight: o.IgnorePreflight,
		AllowUnsignedBundle: o.Trust.AllowUnsigned,
		Discovery:           &disc,
		ArtifactsFrom:       o.ArtifactsFrom,
	})
	if err != nil {
		return err
	}
	o.Out.Logf("host %s: %+v", h.Name(), d.Facts)
	err = phases.Execute(ctx, list, d, phases.Options{Only: o.Phase, Skip: o.SkipPhases})
	if err != nil {
		return joinFailed(ctx, o, d, err)
	}
	if o.Phase == "" {
		o.Out.Total("kforge join finished")
		o.Out.Infof("\nNode %s joined the cluster at %s. See it on the control plane with: kubectl get nodes", d.NodeName, d.Endpoint)
	}
	return nil
}

// joinDiscoveryOptions checks the command line's discovery settings.
func joinDiscoveryOptions(o JoinOptions) (discovery.Options, error) {
	if o.Endpoint == "" {
		return discovery.Options{}, errors.New("kforge join needs the API server's endpoint: kforge join HOST:PORT --token TOKEN --discovery-token-ca-cert-hash sha256:HASH (kforge init prints the command)")
	}
	if _, err := discovery.EndpointURL(o.Endpoint); err != nil {
		return discovery.Options{}, err
	}
	if o.Token == "" {
		return discovery.Options{}, errors.New("--token is required: the bootstrap token from the join command kforge init printed")
	}
	t, err := discovery.ParseToken(o.Token)
	if err != nil {
		return discovery.Options{}, err
	}
	var pins []string
	for _, h := range o.CACertHashes {
		p, err := discovery.ParseCAHash(h)
		if err != nil {
			return discovery.Options{}, err
		}
		pins = append(pins, p)
	}
	if len(pins) == 0 && !o.UnsafeSkipCAVerification {
		return discovery.Options{}, errors.New("--discovery-token-ca-cert-hash is required: it pins the cluster's CA, so that nobody else answering at the endpoint can pose as the cluster. " +
			"Use the hash from the join command kforge init printed, or pass --discovery-token-unsafe-skip-ca-verification to trust the token's signature alone")
	}
	return discovery.Options{
		Endpoint: o.Endpoint, Token: t, CACertHashes: pins,
		UnsafeSkipCAVerification: o.UnsafeSkipCAVerification, Timeout: o.DiscoveryTimeout,
	}, nil
}

// joinFailed undoes a failed join on a machine that had not joined before
// the run, and says what the user can do next.
func joinFailed(ctx context.Context, o JoinOptions, d *phases.Data, err error) error {
	j := d.Results
	switch {
	case o.Phase != "":
		return fmt.Errorf("%w\nFix the cause and run the phase again", err)
	case j.Joined:
		return fmt.Errorf("%w\n%s had joined this cluster before this run and keeps its membership; fix the cause and run the same command again", err, d.Host.Name())
	case !j.Wrote:
		return fmt.Errorf("%w\nNothing was changed on %s; fix the cause and run the same command again", err, d.Host.Name())
	}
	o.Out.Infof("\nThe join failed: undoing what it set up on %s", d.Host.Name())
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if cerr := phases.Execute(cctx, phases.JoinCleanup(), d, phases.Options{}); cerr != nil {
		return fmt.Errorf("%w\nUndoing the join failed too: %v\nRun kforge reset on %s before trying again", err, cerr, d.Host.Name())
	}
	next := fmt.Sprintf("\n%s is back as it was before the join (containerd and the installed binaries stay for the next try); fix the cause and run the same command again", d.Host.Name())
	if j.Registered {
		next += fmt.Sprintf(".\nThe Node object %s stays in the cluster, NotReady, until it joins again or you delete it (kubectl delete node %s)", d.NodeName, d.NodeName)
	}
	return fmt.Errorf("%w%s", err, next)
}
