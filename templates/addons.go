package templates

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"time"

	"kforge.dev/kforge/layout"
)

// Addon names, in the order RenderAddons returns them.
const (
	AddonKubeProxy = "kube-proxy"
	AddonCoreDNS   = "coredns"
	// AddonCSRApprover approves the kubelets' serving certificate
	// requests (package approver), from kforge's own image.
	AddonCSRApprover = "csr-approver"
	// AddonMetricsServer and AddonLocalPath are rendered when their
	// images are set.
	AddonMetricsServer = "metrics-server"
	AddonLocalPath     = "local-path"
)

// DefaultCoreDNSReplicas is how many CoreDNS pods run, as kubeadm's.
const DefaultCoreDNSReplicas = 2

// DefaultBootstrapGroup is the group of nodes joining with a bootstrap
// token.
const DefaultBootstrapGroup = "system:bootstrappers:kubeadm:default-node-token"

// Addons is the data of the cluster's addons: kube-proxy and CoreDNS.
type Addons struct {
	// ProxyImage and CoreDNSImage are image references (images.Set's Proxy
	// and CoreDNS).
	ProxyImage   string
	CoreDNSImage string
	// KforgeImage is kforge's own image (images.KforgeSpec), which runs
	// the CSR approver.
	KforgeImage string
	// MetricsServerImage and LocalPathImage, when set, add metrics-server
	// and local-path-provisioner (the default StorageClass, with volumes
	// under LocalPathDir, layout.LocalPathDir when empty).
	MetricsServerImage string
	LocalPathImage     string
	LocalPathDir       string
	// WorkloadPullPolicy is the imagePullPolicy of metrics-server and
	// local-path-provisioner: Never (the default) when their images come
	// from the bundle, IfNotPresent when from a registry.
	WorkloadPullPolicy string
	// APIServerURL is where kube-proxy and the other host-network
	// add-ons reach the API server: the control-plane endpoint, or the
	// node's own load balancer, https://host:port.
	APIServerURL string
	// CoreDNSAPIServerURL is where CoreDNS, on the pod network, reaches
	// it: the endpoint, or, when empty, the kubernetes Service (a cluster
	// with several control planes, whose endpoints kube-proxy spreads over
	// the live API servers).
	CoreDNSAPIServerURL string
	// PodSubnet is kube-proxy's clusterCIDR (a comma-separated dual-stack
	// pair is allowed).
	PodSubnet string
	// ProxyMinSyncPeriod is kube-proxy's iptables.minSyncPeriod (a
	// duration such as 100ms); upstream's default, 1s, when empty.
	ProxyMinSyncPeriod string
	// DNSDomain is the cluster's DNS domain; cluster.local when empty.
	DNSDomain string
	// DNSServiceIP is the kube-dns Service's ClusterIP: the tenth address
	// of the service subnet.
	DNSServiceIP string
	// NoUpstreamDNS leaves CoreDNS without forwarding (and without the
	// loop check): the control-plane host has no resolver pods can reach.
	NoUpstreamDNS bool
	// CoreDNSReplicas is 2 when zero.
	CoreDNSReplicas int
	// LibModules mounts the host's /lib/modules into kube-proxy; set it
	// only when the host has that directory.
	LibModules bool
	// BootstrapGroup may read kube-proxy's ConfigMap while joining;
	// DefaultBootstrapGroup when empty.
	BootstrapGroup string
}

// Addon is one addon's manifest: multi-document YAML to apply.
type Addon struct {
	Name string
	Data []byte
}

// RenderAddons renders kube-proxy's, CoreDNS's and the CSR approver's
// manifests, and metrics-server's and local-path-provisioner's when their
// images are set.
func RenderAddons(a Addons) ([]Addon, error) {
	a = a.withDefaults()
	if err := a.validate(); err != nil {
		return nil, err
	}
	var out []Addon
	names := []string{AddonKubeProxy, AddonCoreDNS, AddonCSRApprover}
	if a.MetricsServerImage != "" {
		names = append(names, AddonMetricsServer)
	}
	if a.LocalPathImage != "" {
		names = append(names, AddonLocalPath)
	}
	for _, name := range names {
		data, err := Render("addons/"+name+".yaml", a)
		if err != nil {
			return nil, err
		}
		out = append(out, Addon{Name: name, Data: data})
	}
	return out, nil
}

func (a Addons) withDefaults() Addons {
	if a.DNSDomain == "" {
		a.DNSDomain = layout.DNSDomain
	}
	if a.CoreDNSReplicas == 0 {
		a.CoreDNSReplicas = DefaultCoreDNSReplicas
	}
	if a.BootstrapGroup == "" {
		a.BootstrapGroup = DefaultBootstrapGroup
	}
	if a.LocalPathDir == "" {
		a.LocalPathDir = layout.LocalPathDir
	}
	if a.WorkloadPullPolicy == "" {
		a.WorkloadPullPolicy = "Never"
	}
	return a
}

var dnsDomain = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// APIServerHost is the host of APIServerURL.
func (a Addons) APIServerHost() string {
	u, err := url.Parse(a.APIServerURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// CoreDNSAPIServerHost and CoreDNSAPIServerPort split CoreDNSAPIServerURL.
func (a Addons) CoreDNSAPIServerHost() string {
	u, err := url.Parse(a.CoreDNSAPIServerURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// CoreDNSAPIServerPort: see CoreDNSAPIServerHost.
func (a Addons) CoreDNSAPIServerPort() string {
	u, err := url.Parse(a.CoreDNSAPIServerURL)
	if err != nil {
		return ""
	}
	return u.Port()
}

// APIServerPort is the port of APIServerURL.
func (a Addons) APIServerPort() string {
	u, err := url.Parse(a.APIServerURL)
	if err != nil {
		return ""
	}
	return u.Port()
}

func (a Addons) validate() error {
	var errs []error
	if a.ProxyImage == "" {
		errs = append(errs, errors.New("ProxyImage is empty"))
	}
	if a.CoreDNSImage == "" {
		errs = append(errs, errors.New("CoreDNSImage is empty"))
	}
	if a.KforgeImage == "" {
		errs = append(errs, errors.New("KforgeImage is empty"))
	}
	if a.ProxyMinSyncPeriod != "" {
		if d, err := time.ParseDuration(a.ProxyMinSyncPeriod); err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("ProxyMinSyncPeriod %q is not a duration of 0s or more", a.ProxyMinSyncPeriod))
		}
	}
	if u, err := url.Parse(a.APIServerURL); err != nil || u.Scheme != "https" || u.Host == "" || u.Port() == "" || u.Path != "" {
		errs = append(errs, fmt.Errorf("APIServerURL %q is not https://host:port", a.APIServerURL))
	}
	if err := checkCIDRs("PodSubnet", a.PodSubnet, true); err != nil {
		errs = append(errs, err)
	}
	if !dnsDomain.MatchString(a.DNSDomain) {
		errs = append(errs, fmt.Errorf("DNSDomain %q is not a DNS domain", a.DNSDomain))
	}
	if net.ParseIP(a.DNSServiceIP) == nil {
		errs = append(errs, fmt.Errorf("DNSServiceIP %q is not an IP address", a.DNSServiceIP))
	}
	if a.CoreDNSReplicas < 1 {
		errs = append(errs, fmt.Errorf("CoreDNSReplicas %d is below 1", a.CoreDNSReplicas))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("addons: %w", err)
	}
	return nil
}
