package templates

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// Defaults for ControlPlane and Kubelet fields left empty.
const (
	DefaultHealthCheckTimeout = 4 * time.Minute
)

// Annotations kforge puts on the static pods, where kubeadm puts its own
// kubeadm.kubernetes.io/ ones.
const (
	AnnotationAPIServerEndpoint = "kforge.dev/kube-apiserver.advertise-address.endpoint"
	AnnotationEtcdAdvertiseURLs = "kforge.dev/etcd.advertise-client-urls"
)

const (
	hostPathDirectoryOrCreate = "DirectoryOrCreate"
	hostPathFileOrCreate      = "FileOrCreate"
	hostPathFile              = "File"
	startupProbePeriod        = time.Second
)

// CACertDirCandidates are the host directories that /etc/ssl/certs may link
// into; each one present on the control-plane host belongs in
// ControlPlane.CACertDirs so that the API server and controller manager can
// follow the links.
func CACertDirCandidates() []string {
	return []string{"/etc/pki/ca-trust", "/etc/pki/tls/certs", "/etc/ca-certificates", "/usr/share/ca-certificates", "/usr/local/share/ca-certificates"}
}

// ControlPlaneImages are the image references of the static pods.
type ControlPlaneImages struct {
	Etcd              string
	APIServer         string
	ControllerManager string
	Scheduler         string
}

// ControlPlane is the data of the four static pod manifests of a
// control-plane node: etcd.yaml, kube-apiserver.yaml,
// kube-controller-manager.yaml and kube-scheduler.yaml.
type ControlPlane struct {
	Images ControlPlaneImages
	// EtcdVersion is the etcd release the Etcd image runs, e.g. 3.6.6 or
	// v3.5.35: etcd 3.6 takes feature gates where 3.5 takes
	// --experimental-* flags.
	EtcdVersion string
	// NodeName names the etcd member.
	NodeName string
	// AdvertiseAddress is the node's IP, where the API server and etcd
	// listen for the cluster.
	AdvertiseAddress string
	// BindPort is the API server's secure port; 0 means 6443.
	BindPort int

	// EtcdInitialCluster is the --initial-cluster of a member that joins
	// a running etcd (EtcdJoin); empty means this member alone, a new
	// cluster. EtcdMembers is how many members the cluster is built to
	// have (its control planes): its election timing comes from it.
	EtcdInitialCluster string
	EtcdJoin           bool
	EtcdMembers        int

	// Directories on the host; empty means the Default* constant.
	PKIDir        string
	KubeconfigDir string
	ManifestDir   string
	EtcdDataDir   string

	// ServiceSubnet is required; PodSubnet, when set, makes the controller
	// manager allocate node CIDRs from it.
	ServiceSubnet string
	PodSubnet     string
	// ClusterName and DNSDomain default to kubernetes and cluster.local.
	ClusterName string
	DNSDomain   string

	// CACertDirs are extra host directories mounted read-only beside
	// /etc/ssl/certs (see CACertDirCandidates).
	CACertDirs []string
	// HealthCheckTimeout bounds how long the startup probes wait for a
	// component to come up; 0 means 4m.
	HealthCheckTimeout time.Duration

	// Extra flags per component, name (without dashes) to value; they
	// override kforge's defaults, which the cluster file's validation
	// allows only for the flags Overridable lists.
	EtcdExtraArgs              map[string]string
	APIServerExtraArgs         map[string]string
	ControllerManagerExtraArgs map[string]string
	SchedulerExtraArgs         map[string]string
}

// Mount is a hostPath volume and its mount in the container at the same
// path.
type Mount struct {
	Name     string
	HostPath string
	ReadOnly bool
	// Type is the hostPath type: DirectoryOrCreate or FileOrCreate.
	Type string
}

// RenderControlPlane renders the four static pod manifests into
// ManifestDir.
func RenderControlPlane(c ControlPlane) ([]host.File, error) {
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	var out []host.File
	for _, name := range []string{"etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"} {
		data, err := Render("controlplane/"+name, c)
		if err != nil {
			return nil, err
		}
		out = append(out, host.File{Path: path.Join(c.ManifestDir, name), Data: data, Mode: layout.SecretMode})
	}
	return out, nil
}

// AuditPolicy is the API server's audit policy, written to
// layout.AuditPolicy before its manifest.
func AuditPolicy() ([]byte, error) {
	return Render("controlplane/audit-policy.yaml", nil)
}

func (c ControlPlane) withDefaults() ControlPlane {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.PKIDir, layout.PKIDir)
	def(&c.KubeconfigDir, layout.KubernetesDir)
	def(&c.ManifestDir, layout.ManifestsDir)
	def(&c.EtcdDataDir, layout.EtcdDataDir)
	def(&c.ClusterName, layout.ClusterName)
	def(&c.DNSDomain, layout.DNSDomain)
	if c.BindPort == 0 {
		c.BindPort = layout.APIServerPort
	}
	if c.HealthCheckTimeout == 0 {
		c.HealthCheckTimeout = DefaultHealthCheckTimeout
	}
	return c
}

func (c ControlPlane) validate() error {
	var errs []error
	need := func(field, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is empty", field))
		}
	}
	need("Images.Etcd", c.Images.Etcd)
	need("Images.APIServer", c.Images.APIServer)
	need("Images.ControllerManager", c.Images.ControllerManager)
	need("Images.Scheduler", c.Images.Scheduler)
	need("NodeName", c.NodeName)
	if ip := net.ParseIP(c.AdvertiseAddress); ip == nil || ip.IsUnspecified() {
		errs = append(errs, fmt.Errorf("AdvertiseAddress %q is not a node's IP address", c.AdvertiseAddress))
	}
	if c.BindPort < 1 || c.BindPort > 65535 {
		errs = append(errs, fmt.Errorf("BindPort %d is not a port", c.BindPort))
	}
	if _, _, err := parseEtcdVersion(c.EtcdVersion); err != nil {
		errs = append(errs, err)
	}
	if err := checkCIDRs("ServiceSubnet", c.ServiceSubnet, true); err != nil {
		errs = append(errs, err)
	}
	if err := checkCIDRs("PodSubnet", c.PodSubnet, false); err != nil {
		errs = append(errs, err)
	}
	for _, d := range c.CACertDirs {
		if !path.IsAbs(d) || d == "/" {
			errs = append(errs, fmt.Errorf("CACertDirs: %q is not an absolute directory", d))
		}
	}
	for field, p := range map[string]string{"PKIDir": c.PKIDir, "KubeconfigDir": c.KubeconfigDir, "ManifestDir": c.ManifestDir, "EtcdDataDir": c.EtcdDataDir} {
		if !path.IsAbs(p) {
			errs = append(errs, fmt.Errorf("%s %q is not an absolute path", field, p))
		}
	}
	if c.HealthCheckTimeout < 0 {
		errs = append(errs, fmt.Errorf("HealthCheckTimeout %s is negative", c.HealthCheckTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("control-plane manifests: %w", err)
	}
	return nil
}

// checkCIDRs checks a subnet or a comma-separated dual-stack pair.
func checkCIDRs(field, v string, required bool) error {
	if v == "" {
		if required {
			return fmt.Errorf("%s is empty", field)
		}
		return nil
	}
	for _, part := range strings.Split(v, ",") {
		if _, _, err := net.ParseCIDR(part); err != nil {
			return fmt.Errorf("%s %q: %w", field, v, err)
		}
	}
	return nil
}

// parseEtcdVersion reads major and minor from 3.6.6, v3.5.35 or 3.6.6-0.
func parseEtcdVersion(v string) (major, minor int, err error) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) >= 2 {
		major, err = strconv.Atoi(parts[0])
		if err == nil {
			minor, err = strconv.Atoi(parts[1])
		}
		if err == nil {
			return major, minor, nil
		}
	}
	return 0, 0, fmt.Errorf("EtcdVersion %q is not an etcd version like 3.6.6", v)
}

// EtcdUsesFeatureGates is true for etcd 3.6 and later, which replaced
// --experimental-initial-corrupt-check and
// --experimental-watch-progress-notify-interval with --feature-gates and
// --watch-progress-notify-interval.
func (c ControlPlane) EtcdUsesFeatureGates() bool {
	major, minor, err := parseEtcdVersion(c.EtcdVersion)
	if err != nil {
		return true
	}
	return major > 3 || major == 3 && minor >= 6
}

// IPv6 reports whether the advertise address is an IPv6 address.
func (c ControlPlane) IPv6() bool {
	ip := net.ParseIP(c.AdvertiseAddress)
	return ip != nil && ip.To4() == nil
}

// Localhost is the loopback address of the advertise address's family.
func (c ControlPlane) Localhost() string {
	if c.IPv6() {
		return "::1"
	}
	return "127.0.0.1"
}

// ControllerManagerProbeHost is where the kubelet probes the controller
// manager: its bind address, or none (the pod IP) when it binds to all
// addresses.
func (c ControlPlane) ControllerManagerProbeHost() string {
	return probeHost(c.ControllerManagerExtraArgs)
}

// SchedulerProbeHost is where the kubelet probes the scheduler.
func (c ControlPlane) SchedulerProbeHost() string {
	return probeHost(c.SchedulerExtraArgs)
}

func probeHost(extra map[string]string) string {
	addr, ok := extra["bind-address"]
	switch {
	case !ok:
		return "127.0.0.1"
	case addr == "0.0.0.0" || addr == "::":
		return ""
	}
	return addr
}

// APIServerEndpoint is host:port of the API server on this node.
func (c ControlPlane) APIServerEndpoint() string {
	return net.JoinHostPort(c.AdvertiseAddress, strconv.Itoa(c.BindPort))
}

// EtcdClientURL is where the API server of another node reaches this etcd.
func (c ControlPlane) EtcdClientURL() string {
	return "https://" + net.JoinHostPort(c.AdvertiseAddress, strconv.Itoa(layout.EtcdClientPort))
}

// EtcdLocalClientURL is this node's etcd on loopback.
func (c ControlPlane) EtcdLocalClientURL() string {
	return "https://" + net.JoinHostPort(c.Localhost(), strconv.Itoa(layout.EtcdClientPort))
}

// EtcdPeerURL is where other etcd members reach this one.
func (c ControlPlane) EtcdPeerURL() string {
	return "https://" + net.JoinHostPort(c.AdvertiseAddress, strconv.Itoa(layout.EtcdPeerPort))
}

// EtcdInitialClusterFlag is etcd's --initial-cluster: this member alone,
// or the running members a joining one starts with.
func (c ControlPlane) EtcdInitialClusterFlag() string {
	if c.EtcdInitialCluster != "" {
		return c.EtcdInitialCluster
	}
	return c.NodeName + "=" + c.EtcdPeerURL()
}

// EtcdHeartbeat and EtcdElectionTimeout are etcd's raft timing in
// milliseconds. A single member elects itself: the smallest ratio etcd
// accepts (5) keeps its wait for its own election at every start under
// 0.25 s. Several members talk over the network, where etcd's defaults
// (100 ms, 1 s, as kubeadm runs them) keep a slow peer from causing
// elections while a lost leader is replaced within about a second.
func (c ControlPlane) EtcdHeartbeat() string {
	if c.EtcdMembers > 1 {
		return "100"
	}
	return "50"
}

// EtcdElectionTimeout: see EtcdHeartbeat.
func (c ControlPlane) EtcdElectionTimeout() string {
	if c.EtcdMembers > 1 {
		return "1000"
	}
	return "250"
}

// EtcdMetricsURL serves etcd's metrics and its /livez and /readyz probes.
func (c ControlPlane) EtcdMetricsURL() string {
	return "http://" + net.JoinHostPort(c.Localhost(), strconv.Itoa(layout.EtcdMetricsPort))
}

// ServiceAccountIssuer is the issuer of service account tokens.
func (c ControlPlane) ServiceAccountIssuer() string {
	return "https://kubernetes.default.svc." + c.DNSDomain
}

// AuditLogPath is where the API server writes its audit log.
func (c ControlPlane) AuditLogPath() string { return layout.AuditLog }

// AuditPolicyPath is the API server's audit policy.
func (c ControlPlane) AuditPolicyPath() string { return c.Kubeconfig(path.Base(layout.AuditPolicy)) }

// EncryptionConfigPath encrypts Secrets at rest.
func (c ControlPlane) EncryptionConfigPath() string { return c.PKI(path.Base(layout.EncryptionConfig)) }

// TLSCipherSuites are the cipher suites of every TLS 1.2 server.
func (c ControlPlane) TLSCipherSuites() string { return layout.TLSCipherSuites }

// TLSMinVersion is the oldest TLS version the servers accept.
func (c ControlPlane) TLSMinVersion() string { return layout.TLSMinVersion }

// PKI joins a file name to PKIDir.
func (c ControlPlane) PKI(name string) string { return path.Join(c.PKIDir, name) }

// Kubeconfig joins a file name to KubeconfigDir.
func (c ControlPlane) Kubeconfig(name string) string { return path.Join(c.KubeconfigDir, name) }

// StartupFailureThreshold makes the startup probes cover HealthCheckTimeout.
// They run every second from the container's start (kubeadm's wait 10 s,
// then probe every 10 s), so that a component counts as started, and its
// pod as Ready, within a second of answering.
func (c ControlPlane) StartupFailureThreshold() int {
	t := c.HealthCheckTimeout
	if t <= 0 {
		t = DefaultHealthCheckTimeout
	}
	return int(math.Ceil(t.Seconds() / startupProbePeriod.Seconds()))
}

// APIServerMounts are the API server's hostPath mounts, sorted by name.
func (c ControlPlane) APIServerMounts() []Mount {
	m := []Mount{
		{Name: "k8s-certs", HostPath: c.PKIDir, ReadOnly: true, Type: hostPathDirectoryOrCreate},
		{Name: "ca-certs", HostPath: layout.SystemCACertsDir, ReadOnly: true, Type: hostPathDirectoryOrCreate},
		{Name: "audit-log", HostPath: layout.AuditLogDir, Type: hostPathDirectoryOrCreate},
		{Name: "audit-policy", HostPath: c.AuditPolicyPath(), ReadOnly: true, Type: hostPathFile},
	}
	return sortMounts(append(m, c.caCertMounts()...))
}

// ControllerManagerMounts are the controller manager's hostPath mounts,
// sorted by name.
func (c ControlPlane) ControllerManagerMounts() []Mount {
	m := []Mount{
		{Name: "k8s-certs", HostPath: c.PKIDir, ReadOnly: true, Type: hostPathDirectoryOrCreate},
		{Name: "ca-certs", HostPath: layout.SystemCACertsDir, ReadOnly: true, Type: hostPathDirectoryOrCreate},
		{Name: "kubeconfig", HostPath: c.Kubeconfig("controller-manager.conf"), ReadOnly: true, Type: hostPathFileOrCreate},
		{Name: "flexvolume-dir", HostPath: layout.FlexVolumePluginDir, Type: hostPathDirectoryOrCreate},
	}
	return sortMounts(append(m, c.caCertMounts()...))
}

// SchedulerMounts are the scheduler's hostPath mounts.
func (c ControlPlane) SchedulerMounts() []Mount {
	return []Mount{{Name: "kubeconfig", HostPath: c.Kubeconfig("scheduler.conf"), ReadOnly: true, Type: hostPathFileOrCreate}}
}

func (c ControlPlane) caCertMounts() []Mount {
	var m []Mount
	for _, d := range c.CACertDirs {
		d = path.Clean(d)
		m = append(m, Mount{Name: strings.ReplaceAll(strings.TrimPrefix(d, "/"), "/", "-"), HostPath: d, ReadOnly: true, Type: hostPathDirectoryOrCreate})
	}
	return m
}

// sortMounts orders mounts by name and drops later duplicates of a name.
func sortMounts(m []Mount) []Mount {
	sort.SliceStable(m, func(i, j int) bool { return m[i].Name < m[j].Name })
	out := m[:0]
	for i, x := range m {
		if i > 0 && x.Name == m[i-1].Name {
			continue
		}
		out = append(out, x)
	}
	return out
}
