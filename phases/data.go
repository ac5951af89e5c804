package phases

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/facts"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/reporter"
	"kforge.dev/kforge/templates"
)

// Data is what the phases of one run share: the cluster, the host they act
// on, its facts, and values derived once from them.
type Data struct {
	Cluster *config.Cluster
	// Node is the cluster file's entry for the host.
	Node  config.Host
	Host  host.Host
	Facts facts.Facts
	Out   *reporter.Reporter
	Now   func() time.Time

	// NodeName is the Kubernetes node name: Node.Name, or the hostname.
	NodeName string
	// AdvertiseAddress is the IP the API server and etcd advertise.
	AdvertiseAddress string
	// Endpoint is the control plane's host:port for clients.
	Endpoint string
	// CACertDirs are the host's CA certificate directories that the
	// control-plane pods mount read-only.
	CACertDirs []string
	// CNIBinDir is where the host's CNI plugins are: /opt/cni/bin when
	// kforge installs them from a bundle or they are already there, else
	// Debian's /usr/lib/cni when the OS package provides them.
	CNIBinDir string

	// StagingDir is where a verified bundle is unpacked on the machine
	// kforge runs on (a cache keyed by the bundle's manifest).
	StagingDir string
	// KforgeBinary is kforge's own executable on the machine it runs on;
	// it is installed on the host for the supervisor to run from.
	KforgeBinary string
	// Schedulable leaves the control-plane node without its NoSchedule
	// taint (kforge up --local).
	Schedulable bool
	// kforgeInstalled: kforge's binary is on the host for this run.
	kforgeInstalled bool
	// wroteManifest names the static pod manifests this run changed.
	wroteManifest map[string]bool
	// DNS is the host's resolver setup as pods see it.
	DNS resolvers
	// IgnorePreflight names preflight checks whose failure is only a
	// warning ("all" for every one).
	IgnorePreflight []string
	// Join holds what `kforge join` knows and learns; nil in other
	// commands.
	Join *JoinConfig
}

// Images returns the upstream names of the cluster's images.
func (d *Data) Images() (images.Set, error) {
	return images.For(d.Cluster.KubernetesVersion)
}

// Prepare gathers the host's facts and derives the run's values. Commands
// call it once before Execute.
func (d *Data) Prepare(ctx context.Context) error {
	if d.Now == nil {
		d.Now = time.Now
	}
	f, err := facts.Gather(ctx, d.Host)
	if err != nil {
		return fmt.Errorf("host %s: %w", d.Host.Name(), err)
	}
	d.Facts = f
	d.NodeName = d.Node.Name
	if d.NodeName == "" {
		d.NodeName = f.Hostname
	}
	if d.NodeName == "" {
		return fmt.Errorf("host %s: no hostname; set the host's name in the cluster file or pass --node-name", d.Host.Name())
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
		return fmt.Errorf("host %s: no IPv4 address to advertise (no default route); pass --apiserver-advertise-address or set nodeIP in the cluster file", d.Host.Name())
	}
	argv := append([]string{"sh", "-c", `for d in "$@"; do [ -d "$d" ] && echo "$d"; done; true`, "sh"}, templates.CACertDirCandidates()...)
	dirs, err := host.Probe(ctx, d.Host, argv...)
	if err != nil {
		return fmt.Errorf("host %s: %w", d.Host.Name(), err)
	}
	d.CACertDirs = strings.Fields(dirs)
	d.CNIBinDir = layout.CNIBinDir
	if ok, err := host.Exists(ctx, d.Host, layout.DebianCNIBinDir+"/bridge"); err != nil {
		return fmt.Errorf("host %s: %w", d.Host.Name(), err)
	} else if ok && d.Cluster.Artifacts.Bundle == "" {
		d.CNIBinDir = layout.DebianCNIBinDir
	}
	if d.DNS, err = probeResolvers(ctx, d.Host); err != nil {
		return fmt.Errorf("host %s: %w", d.Host.Name(), err)
	}
	d.Endpoint = d.Cluster.ControlPlaneEndpoint
	if d.Endpoint == "" {
		d.Endpoint = net.JoinHostPort(d.AdvertiseAddress, strconv.Itoa(layout.APIServerPort))
	} else if _, _, err := net.SplitHostPort(d.Endpoint); err != nil {
		d.Endpoint = net.JoinHostPort(d.Endpoint, strconv.Itoa(layout.APIServerPort))
	}
	return nil
}

// LocalAPIServer is the URL of this host's own API server.
func (d *Data) LocalAPIServer() string {
	return "https://" + net.JoinHostPort(d.AdvertiseAddress, strconv.Itoa(layout.APIServerPort))
}
