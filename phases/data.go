package phases

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/facts"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/reporter"
	"kforge.dev/kforge/services"
	"kforge.dev/kforge/templates"
)

// Config is what a command gives the phases of one run on one host.
type Config struct {
	// Command is the command the run belongs to (init, up, join, reset),
	// as the run record names it.
	Command string
	Cluster *config.Cluster
	// Node is the cluster file's entry for the host.
	Node config.Host
	Host host.Host
	Out  *reporter.Reporter
	// KforgeBinary is kforge's own executable on the machine it runs on,
	// which the supervisor runs from on hosts without systemd. Reset does
	// not need it.
	KforgeBinary string
	// StagingDir is where a verified bundle is unpacked on the machine
	// kforge runs on (a cache keyed by the bundle's manifest).
	StagingDir string
	// ArtifactsFrom is a control plane's artifact server
	// (https://host:port) that a joining worker fetches its part of the
	// bundle from, instead of reading a bundle file (init -f and join
	// --ssh set it; see package artifacts).
	ArtifactsFrom string
	// AllowUnsignedBundle installs a bundle without a trusted signature
	// (--unsafe-allow-unsigned-bundle), with a warning.
	AllowUnsignedBundle bool
	// Schedulable leaves the control-plane node without its NoSchedule
	// taint (kforge up --local).
	Schedulable bool
	// IgnorePreflight names preflight checks whose failure is only a
	// warning ("all" for every one).
	IgnorePreflight []string
	// Discovery is set for `kforge join`: where the cluster is and how far
	// to trust it.
	Discovery *discovery.Options
	// ControlPlaneSource is a running control plane of the cluster, set
	// for a control plane that joins it (JoinControlPlane): the shared
	// secrets are copied from it and its etcd takes the new member.
	ControlPlaneSource host.Host
	// WaitTimeout, when set, bounds init's wait for the API server and
	// for the node instead of APIServerWaitTimeout and
	// NodeReadyWaitTimeout: an upgrade's health gate is shorter, so that a
	// broken version is rolled back sooner.
	WaitTimeout time.Duration
	// Force lets reset take a control plane's etcd member out even when
	// the members left would not make a quorum.
	Force bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Data is what the phases of one run share. It has three parts: what the
// command gave (Config), what New learned about the host once (facts and
// the values derived from them), and Results, which phases set for later
// phases. Nothing else passes between phases.
type Data struct {
	Config

	// Facts are the host's, gathered once by New.
	Facts facts.Facts
	// Services keeps containerd and the kubelet running on the host: as
	// systemd units or under kforge's supervisor, chosen from Facts.
	Services services.Manager
	// NodeName is the Kubernetes node name: Node.Name, or the hostname.
	NodeName string
	// AdvertiseAddress is the IP the API server and etcd advertise and the
	// kubelet reports.
	AdvertiseAddress string
	// Endpoint is the control plane's host:port for clients.
	Endpoint string
	// CACertDirs are the host's CA certificate directories that the
	// control-plane pods mount read-only.
	CACertDirs []string
	// DNS is the host's resolver setup as pods see it.
	DNS resolvers

	Results Results
}

// Results are what phases hand on to later phases of the same run. Each
// field says which phase sets it and which read it.
type Results struct {
	// ChangedManifests names the static pod manifests (etcd.yaml,
	// kube-apiserver.yaml, ...) this run wrote or changed. Set by etcd and
	// control-plane/*; read by control-plane-check, which waits for a
	// fresh leader lease only from components whose manifest changed.
	ChangedManifests map[string]bool
	// RuntimeFromOS says the CNI plugins are the OS's: New sets it when
	// there is no bundle and the OS's plugins are there, runtime when it
	// installed them with the OS's package manager. CNIBinDir follows it.
	RuntimeFromOS bool
	// KubeletRestarted is set by wait and control-plane-check when they
	// restarted the kubelet (restartKubelet); read by the mirror-pod check
	// (checkMirrorPods), which then waits rather than restart it again.
	KubeletRestarted bool
	// KernelDefaults says the host holds the kernel settings the kubelet
	// checks under protectKernelDefaults. Set by kubelet and kubelet-start
	// (kernelDefaults) before they render the kubelet's configuration.
	KernelDefaults bool
	// BundleChecked names the bundle file whose signature inspectBundle
	// checked in this run, so that it is checked once.
	BundleChecked string
	// FetchedManifest is the signed manifest a worker read from its
	// control plane's artifact server (serverSource), once per run.
	FetchedManifest *bundle.Manifest
	// StagedDir is the staging directory stageBundle verified or filled
	// in this run; bundle and images both use it.
	StagedDir string
	// Recorded is set once the host's run record names this run's cluster
	// (runrecord.go): by preflight, or by the first phase that writes when
	// preflight was left out.
	Recorded bool

	// Joined is set by join's preflight: when the run started, the host
	// already belonged to the cluster being joined (its kubelet.conf names
	// the pinned CA). A failed run then keeps the membership.
	Joined bool
	// Discovered is set by the first join phase that needs the cluster
	// (discovery, or any one run alone): what token discovery verified.
	// The same step adopts the cluster's own settings (adoptCluster).
	Discovered *discovery.Result
	// Wrote is set by join's phases once they write to the host: a failure
	// from then on, on a host that had not joined before, undoes the join
	// (JoinCleanup).
	Wrote bool
	// Registered is set by join's wait once the API server has the Node.
	Registered bool
	// TokenExpires is when the join token expires, set by bootstrap-token
	// (a new token's or a reused one's); read by init's summary.
	TokenExpires time.Time

	// EtcdInitialCluster is the --initial-cluster of this control plane's
	// etcd when it joined a running one: set by etcd-join, read when the
	// control plane's manifests are rendered.
	EtcdInitialCluster string
	// EtcdMemberAdded is set by etcd-join when this run added the host's
	// etcd member; a failed join then takes it out again.
	EtcdMemberAdded bool
}

// New gathers the host's facts and derives the run's values from them and
// the cluster file: the node's name and address, the endpoint, the CA
// directories and resolvers, and the host's service manager. Every command
// builds its Data here.
func New(ctx context.Context, cfg Config) (*Data, error) {
	d := &Data{Config: cfg}
	if d.Now == nil {
		d.Now = time.Now
	}
	h := d.Host
	f, err := facts.Gather(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name(), err)
	}
	d.Facts = f
	d.Services = services.For(h, f, d.KforgeBinary)
	d.NodeName = d.Node.Name
	if d.NodeName == "" {
		d.NodeName = f.Hostname
	}
	if d.NodeName == "" {
		return nil, fmt.Errorf("host %s: no hostname; set the host's name in the cluster file or pass --node-name", h.Name())
	}
	switch {
	case d.Node.NodeIP != "":
		d.AdvertiseAddress = d.Node.NodeIP
	case net.ParseIP(d.Node.Address) != nil:
		d.AdvertiseAddress = d.Node.Address
	default:
		d.AdvertiseAddress = f.DefaultIP
	}
	if net.ParseIP(d.AdvertiseAddress) == nil {
		return nil, fmt.Errorf("host %s: no IPv4 address to advertise (no default route); pass --apiserver-advertise-address or set nodeIP in the cluster file", h.Name())
	}
	argv := append([]string{"sh", "-c", `for d in "$@"; do [ -d "$d" ] && echo "$d"; done; true`, "sh"}, templates.CACertDirCandidates()...)
	dirs, err := host.Probe(ctx, h, argv...)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name(), err)
	}
	d.CACertDirs = strings.Fields(dirs)
	if d.DNS, err = probeResolvers(ctx, h); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name(), err)
	}
	if d.Cluster.Artifacts.Bundle == "" && d.ArtifactsFrom == "" {
		// Without a bundle the CNI plugins are the OS's when it has them.
		ok, err := host.Exists(ctx, h, layout.DebianCNIBinDir+"/bridge")
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h.Name(), err)
		}
		d.Results.RuntimeFromOS = ok
	}
	d.Endpoint = endpoint(d.ClusterEndpoint(), d.AdvertiseAddress)
	return d, nil
}

// ClusterEndpoint is the endpoint the cluster file gives clients: its
// controlPlaneEndpoint, else its load balancer's virtual IP, else none
// (each control plane's own address).
func (d *Data) ClusterEndpoint() string {
	if e := d.Cluster.ControlPlaneEndpoint; e != "" {
		return e
	}
	return d.Cluster.LoadBalancer.VirtualIP
}

// NodeAPIServer is host:port where this node's kubelet, kube-proxy and pod
// network reach the API server: with several control planes the node's
// own load balancer on loopback (apiserver-lb), else the endpoint.
func (d *Data) NodeAPIServer() string {
	if d.Cluster.HA() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(layout.APIServerLBPort))
	}
	return d.Endpoint
}

// endpoint is the control plane's host:port: the cluster file's
// controlPlaneEndpoint (6443 when it has no port), else this node's
// address.
func endpoint(configured, advertise string) string {
	if configured == "" {
		return net.JoinHostPort(advertise, strconv.Itoa(layout.APIServerPort))
	}
	if _, _, err := net.SplitHostPort(configured); err != nil {
		return net.JoinHostPort(configured, strconv.Itoa(layout.APIServerPort))
	}
	return configured
}

// adoptCluster makes a joining node's run use the cluster's own settings,
// read from the cluster with the token, and the API server that
// cluster-info names. It is the one place a run's cluster changes.
func (d *Data) adoptCluster(c *config.Cluster, r *discovery.Result) {
	// This host's bundle, and the keys trusted here besides the cluster's.
	keys := append(append([]string(nil), c.Artifacts.TrustedKeys...), d.Cluster.Artifacts.TrustedKeys...)
	c.Artifacts = d.Cluster.Artifacts
	c.Artifacts.TrustedKeys = keys
	d.Cluster = c
	d.Endpoint = strings.TrimPrefix(r.Server, "https://")
	d.Results.Discovered = r
}

// Images returns the upstream names of the cluster's images.
func (d *Data) Images() (images.Set, error) {
	return images.For(d.Cluster.KubernetesVersion)
}

// CNIBinDir is where the host's CNI plugins are: /opt/cni/bin when kforge
// installs them from a bundle, Debian's /usr/lib/cni when the OS package
// provides them.
func (d *Data) CNIBinDir() string {
	if d.Results.RuntimeFromOS {
		return layout.DebianCNIBinDir
	}
	return layout.CNIBinDir
}

// CNIPlugin is the cluster's pod network.
func (d *Data) CNIPlugin() string { return d.Cluster.CNIPlugin() }

// LocalAPIServer is the URL of this host's own API server.
func (d *Data) LocalAPIServer() string {
	return "https://" + net.JoinHostPort(d.AdvertiseAddress, strconv.Itoa(layout.APIServerPort))
}
