// Package config is kforge's cluster file: kforge.yaml, apiVersion
// kforge.dev/v1alpha1, kind Cluster. It decodes strictly (an unknown or
// mistyped key is an error naming the file and line), fills in defaults and
// validates the result.
package config

import (
	"net"
	"strings"
)

// APIVersion and Kind identify a kforge cluster file.
const (
	APIVersion = "kforge.dev/v1alpha1"
	Kind       = "Cluster"
)

// Role of a host in the cluster.
const (
	RoleControlPlane = "control-plane"
	RoleWorker       = "worker"
)

// Where the container runtime comes from.
const (
	// RuntimeBundle installs containerd, runc and the CNI plugins from the
	// bundle, with kforge's config and service (the default).
	RuntimeBundle = "bundle"
	// RuntimeHost uses the containerd and runc the host already has (an OS
	// package); preflight checks its version.
	RuntimeHost = "host"
)

// Certificate key algorithms.
const (
	AlgorithmECDSAP256 = "ECDSA-P256"
	AlgorithmRSA2048   = "RSA-2048"
)

// Cluster is the whole cluster file.
type Cluster struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// Name is the cluster's name in kubeconfigs.
	Name string `yaml:"name,omitempty"`
	// KubernetesVersion is the version to install, one of
	// images.Supported().
	KubernetesVersion string `yaml:"kubernetesVersion"`
	// Runtime is where containerd and runc come from: bundle (default) or
	// host.
	Runtime string `yaml:"runtime,omitempty"`
	// ControlPlaneEndpoint is host[:port] that clients and workers use to
	// reach the API server. Empty means the control-plane host's address
	// and port 6443.
	ControlPlaneEndpoint string `yaml:"controlPlaneEndpoint,omitempty"`
	// LoadBalancer configures the optional virtual IP of a cluster with
	// several control planes.
	LoadBalancer LoadBalancer `yaml:"loadBalancer,omitempty"`
	Networking   Networking   `yaml:"networking"`
	Hosts        []Host       `yaml:"hosts"`
	Certs        Certs        `yaml:"certs"`
	CNI          CNI          `yaml:"cni"`
	Addons       Addons       `yaml:"addons"`
	// Registries configures containerd's pulls per registry: mirrors, a
	// private CA and credentials (registries.go).
	Registries map[string]Registry `yaml:"registries,omitempty"`
	// ImageRepository, when set, is where the add-ons' workload images
	// (CoreDNS, metrics-server, local-path-provisioner) are pulled from,
	// as REPOSITORY/NAME:TAG, instead of being imported from the bundle.
	ImageRepository string    `yaml:"imageRepository,omitempty"`
	Artifacts       Artifacts `yaml:"artifacts"`

	// Extra flags for the components kforge runs, as kubeadm's
	// ClusterConfiguration has them. A flag kforge sets itself is refused,
	// but for the few that templates.Overridable lists.
	APIServer         Component `yaml:"apiServer,omitempty"`
	ControllerManager Component `yaml:"controllerManager,omitempty"`
	Scheduler         Component `yaml:"scheduler,omitempty"`
	Etcd              Component `yaml:"etcd,omitempty"`
	Kubelet           Component `yaml:"kubelet,omitempty"`

	// extraArgLines are the lines of extraArgs entries, by
	// "component.flag", for messages.
	extraArgLines map[string]int
}

// Component holds one component's extra flags: name (without dashes) to
// value.
type Component struct {
	ExtraArgs map[string]string `yaml:"extraArgs,omitempty"`
}

// ExtraArgs returns the extra flags of a component named as in
// templates.Components().
func (c *Cluster) ExtraArgs(component string) map[string]string {
	switch component {
	case "apiServer":
		return c.APIServer.ExtraArgs
	case "controllerManager":
		return c.ControllerManager.ExtraArgs
	case "scheduler":
		return c.Scheduler.ExtraArgs
	case "etcd":
		return c.Etcd.ExtraArgs
	case "kubelet":
		return c.Kubelet.ExtraArgs
	}
	return nil
}

// LoadBalancer is how clients outside the cluster reach a control plane
// that survives losing any one machine. Inside the cluster every node
// reaches the API servers through a load balancer of its own on loopback
// (HAProxy), whatever this says.
type LoadBalancer struct {
	// VirtualIP is a free IPv4 address on the control planes' subnet that
	// keepalived moves to a live control plane (VRRP); the endpoint is
	// then VirtualIP:6443. Empty: clients use controlPlaneEndpoint (a load
	// balancer of the site's own), else the first control plane.
	VirtualIP string `yaml:"virtualIP,omitempty"`
	// Interface carries the virtual IP; empty means the interface that
	// holds each control plane's own address.
	Interface string `yaml:"interface,omitempty"`

	line int
}

// Networking holds the cluster's address ranges.
type Networking struct {
	PodSubnet     string `yaml:"podSubnet"`
	ServiceSubnet string `yaml:"serviceSubnet"`
	DNSDomain     string `yaml:"dnsDomain"`
}

// Host is one machine of the cluster.
type Host struct {
	// Address is how kforge reaches the host: an IP or a DNS name.
	Address string `yaml:"address"`
	// Name is the Kubernetes node name; empty means the host's hostname.
	Name string `yaml:"name,omitempty"`
	// Role is control-plane or worker.
	Role string `yaml:"role"`
	// NodeIP is the address the kubelet advertises; empty means Address
	// when it is an IP.
	NodeIP string `yaml:"nodeIP,omitempty"`
	// Local marks the host kforge runs on: no SSH.
	Local bool `yaml:"local,omitempty"`
	// Labels and Taints are set on the host's Node by kforge init, and
	// kept as the file says on every re-run: labels and taints kforge
	// set before and the file no longer lists are removed, others left
	// alone. A taint is kubectl's KEY[=VALUE]:EFFECT.
	Labels map[string]string `yaml:"labels,omitempty"`
	Taints []string          `yaml:"taints,omitempty"`
	SSH    SSH               `yaml:"ssh,omitempty"`
	Sudo   Sudo              `yaml:"sudo,omitempty"`

	line int // line of the host's entry in the file, for messages
}

// SSH is how kforge connects to a host.
type SSH struct {
	User string `yaml:"user,omitempty"`
	Port int    `yaml:"port,omitempty"`
	// KeyPath is a private key file; an encrypted key's passphrase comes
	// from KeyPassphraseFrom.
	KeyPath           string `yaml:"keyPath,omitempty"`
	KeyPassphraseFrom string `yaml:"keyPassphraseFrom,omitempty"`
	// PasswordFrom is where a login password comes from: env:NAME or
	// file:PATH. Passwords never appear in the cluster file itself.
	PasswordFrom string `yaml:"passwordFrom,omitempty"`
	// UseAgent uses the ssh-agent at $SSH_AUTH_SOCK.
	UseAgent bool `yaml:"useAgent,omitempty"`
	// KnownHosts is the known_hosts file to verify host keys against;
	// empty means ~/.ssh/known_hosts.
	KnownHosts string `yaml:"knownHosts,omitempty"`
	// JumpHost is [user@]host[:port] of a bastion to connect through.
	JumpHost string `yaml:"jumpHost,omitempty"`
}

// Sudo is how a non-root SSH user becomes root.
type Sudo struct {
	// PasswordFrom is where the sudo password comes from (env:NAME or
	// file:PATH); empty means passwordless sudo.
	PasswordFrom string `yaml:"passwordFrom,omitempty"`
}

// Addons are the optional add-ons kforge applies with the cluster; each
// is on unless set to false.
type Addons struct {
	// MetricsServer runs metrics-server: kubectl top, autoscaling.
	MetricsServer *bool `yaml:"metricsServer,omitempty"`
	// Storage runs local-path-provisioner as the default
	// StorageClass, local-path.
	Storage *bool `yaml:"storage,omitempty"`
}

// Enabled reports whether an add-on switch is on: unset means on.
func Enabled(b *bool) bool { return b == nil || *b }

// Certs configures the cluster's PKI.
type Certs struct {
	Algorithm string `yaml:"algorithm"`
	// CAValidity and Validity are Go durations (87600h, 8760h).
	CAValidity string   `yaml:"caValidity"`
	Validity   string   `yaml:"validity"`
	ExtraSANs  []string `yaml:"extraSANs,omitempty"`
	// AutoRenew installs a daily job on every control plane that renews
	// the certificates kforge manages once they are within 30 days of
	// expiry, and records an Event for each renewal.
	AutoRenew bool `yaml:"autoRenew,omitempty"`
}

// CNI picks the pod network.
type CNI struct {
	// Plugin is bridge (one node) or kube-router (any number of nodes);
	// empty picks bridge for one host and kube-router otherwise.
	Plugin string `yaml:"plugin,omitempty"`
}

// Artifacts says where binaries and images come from.
type Artifacts struct {
	// Bundle is a kforge bundle file to install from.
	Bundle string `yaml:"bundle,omitempty"`
	// TrustedKeys are the public keys (authorized_keys lines, or files of
	// them) whose signature a bundle must carry to be installed.
	TrustedKeys []string `yaml:"trustedKeys,omitempty"`
}

// Line is the line of the host's entry in its cluster file, or 0.
func (h Host) Line() int { return h.line }

// ControlPlane returns the first control-plane host.
func (c *Cluster) ControlPlane() (Host, bool) {
	for _, h := range c.Hosts {
		if h.Role == RoleControlPlane {
			return h, true
		}
	}
	return Host{}, false
}

// ControlPlanes returns the control-plane hosts in file order: the first
// one starts the cluster and the others join it in this order.
func (c *Cluster) ControlPlanes() []Host {
	var cps []Host
	for _, h := range c.Hosts {
		if h.Role == RoleControlPlane {
			cps = append(cps, h)
		}
	}
	return cps
}

// HA tells whether the cluster has several control planes, and so etcd
// members, node-local load balancers and, optionally, a virtual IP.
func (c *Cluster) HA() bool { return len(c.ControlPlanes()) > 1 }

// EndpointHostOf is the host part of host, host:port or [v6]:port.
func EndpointHostOf(endpoint string) string {
	if h, _, err := net.SplitHostPort(endpoint); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(endpoint, "["), "]")
}

// Workers returns the worker hosts in file order.
func (c *Cluster) Workers() []Host {
	var ws []Host
	for _, h := range c.Hosts {
		if h.Role == RoleWorker {
			ws = append(ws, h)
		}
	}
	return ws
}

// SingleHostProxyMinSyncPeriod is kube-proxy's minSyncPeriod on a cluster
// of one host: a Service's rules follow its endpoints within 0.1 s instead
// of up to a second later. A cluster of several hosts keeps upstream's 1s,
// which batches the endpoint changes of many nodes into fewer rewrites.
const SingleHostProxyMinSyncPeriod = "100ms"

// ProxyMinSyncPeriod is kube-proxy's iptables.minSyncPeriod for the
// cluster: SingleHostProxyMinSyncPeriod with one host, "" (upstream's
// default) with more.
func (c *Cluster) ProxyMinSyncPeriod() string {
	if len(c.Hosts) > 1 {
		return ""
	}
	return SingleHostProxyMinSyncPeriod
}

// CNIPlugin is the cluster's pod network: the cluster file's choice, else
// bridge for one host and kube-router for more.
func (c *Cluster) CNIPlugin() string {
	if c.CNI.Plugin != "" {
		return c.CNI.Plugin
	}
	if len(c.Hosts) > 1 {
		return "kube-router"
	}
	return "bridge"
}
