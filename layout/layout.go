// Package layout is the one place for the well-known paths, ports, file
// modes and names of a kforge host, as kubeadm's constants package is for
// kubeadm. Every other package, the templates' defaults included, takes
// them from here; none spells a path such as /etc/kubernetes or a port
// such as 6443 itself.
package layout

import "time"

// Kubernetes' directories and files, as kubeadm lays them out.
const (
	KubernetesDir = "/etc/kubernetes"
	PKIDir        = KubernetesDir + "/pki"
	ManifestsDir  = KubernetesDir + "/manifests"
	// CACert is the cluster CA; a worker's pki directory holds only it.
	CACert = PKIDir + "/ca.crt"

	AdminConf             = KubernetesDir + "/admin.conf"
	SuperAdminConf        = KubernetesDir + "/super-admin.conf"
	KubeletConf           = KubernetesDir + "/kubelet.conf"
	BootstrapKubeletConf  = KubernetesDir + "/bootstrap-kubelet.conf"
	ControllerManagerConf = KubernetesDir + "/controller-manager.conf"
	SchedulerConf         = KubernetesDir + "/scheduler.conf"

	EtcdDataDir = "/var/lib/etcd"
	// EtcdBeforeRestore is etcd's data directory as it was before the last
	// kforge etcd snapshot restore.
	EtcdBeforeRestore = EtcdDataDir + ".kforge-before-restore"

	// EncryptionConfig encrypts Secrets at rest with a key generated at
	// init; it lives with the PKI, readable by root only.
	EncryptionConfig = PKIDir + "/encryption-config.yaml"
	// AuditPolicy is what the API server records in AuditLog.
	AuditPolicy = KubernetesDir + "/audit-policy.yaml"
	AuditLogDir = "/var/log/kubernetes/audit"
	AuditLog    = AuditLogDir + "/audit.log"

	// APIServerLBManifest and APIServerLBConfig are the node-local load
	// balancer of a cluster with several control planes: HAProxy as a
	// static pod on every node, on loopback, in front of every API server.
	APIServerLBManifest = ManifestsDir + "/kforge-apiserver-lb.yaml"
	APIServerLBConfig   = KubernetesDir + "/kforge-apiserver-lb.cfg"
	// VIPManifest and VIPConfig are keepalived on each control plane,
	// holding the cluster's virtual IP (loadBalancer.virtualIP).
	VIPManifest = ManifestsDir + "/kforge-vip.yaml"
	VIPConfig   = KubernetesDir + "/kforge-vip.conf"
)

// SharedControlPlaneFiles are the secrets every control plane of a
// cluster holds alike and a joining control plane gets from one that runs:
// the three CAs with their keys, the service-account key pair and the key
// that encrypts Secrets at rest. The leaf certificates are each node's own.
var SharedControlPlaneFiles = []string{
	PKIDir + "/ca.crt", PKIDir + "/ca.key",
	PKIDir + "/sa.key", PKIDir + "/sa.pub",
	PKIDir + "/front-proxy-ca.crt", PKIDir + "/front-proxy-ca.key",
	PKIDir + "/etcd/ca.crt", PKIDir + "/etcd/ca.key",
	EncryptionConfig,
}

// TLS settings of every server kforge configures: TLS 1.2 and later with
// ECDHE key exchange and AEAD ciphers only (TLS 1.3's suites are fixed by
// Go and always on). The names are Go's, which the Kubernetes components
// and etcd take.
const (
	TLSMinVersion   = "VersionTLS12"
	TLSCipherSuites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256," +
		"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
)

// The kubelet's files.
const (
	KubeletDir      = "/var/lib/kubelet"
	KubeletConfig   = KubeletDir + "/config.yaml"
	KubeletFlagsEnv = KubeletDir + "/kforge-flags.env"
	// LocalPathDir holds local-path-provisioner's volumes, one directory
	// each.
	LocalPathDir = "/opt/local-path-provisioner"
	// KubeletServingCert is the kubelet's serving certificate and key,
	// signed by the cluster CA through the CSR API (serverTLSBootstrap)
	// and rotated by the kubelet.
	KubeletServingCert = KubeletDir + "/pki/kubelet-server-current.pem"
	KubeletBinary      = BinDir + "/kubelet"
	KubeletUnit        = "/etc/systemd/system/kubelet.service"
	KubeletUnitDropIn  = KubeletUnit + ".d/10-kforge.conf"
	// KubeletSysctlConf holds the kernel settings the kubelet's
	// protectKernelDefaults checks.
	KubeletSysctlConf   = "/etc/sysctl.d/90-kforge-kubelet.conf"
	PodLogsDir          = "/var/log/pods"
	ContainerLogsDir    = "/var/log/containers"
	FlexVolumePluginDir = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
)

// containerd and the CNI.
const (
	ContainerdDir    = "/etc/containerd"
	ContainerdConfig = ContainerdDir + "/config.toml"
	// ContainerdCertsDir holds one directory per registry host with its
	// hosts.toml (mirrors, CA), containerd's registry config_path.
	ContainerdCertsDir = ContainerdDir + "/certs.d"
	ContainerdRoot     = "/var/lib/containerd"
	ContainerdState    = "/run/containerd"
	ContainerdSocket   = ContainerdState + "/containerd.sock"
	// The runtime kforge installs from a bundle, and containerd's unit
	// for hosts with systemd.
	ContainerdBinary = BinDir + "/containerd"
	CtrBinary        = BinDir + "/ctr"
	RuncBinary       = BinDir + "/runc"
	ContainerdUnit   = SystemdUnitDir + "/containerd.service"
	// CrictlConfig points crictl at containerd.
	CrictlConfig = "/etc/crictl.yaml"
	// ServicePath is the PATH containerd runs with, under systemd and
	// kforge's supervisor alike.
	ServicePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// ContainerRuntimeEndpoint is the kubelet's URL of ContainerdSocket.
	ContainerRuntimeEndpoint = "unix://" + ContainerdSocket

	// ContainerdNamespace is containerd's namespace of the CRI plugin,
	// where the kubelet's images and containers are.
	ContainerdNamespace = "k8s.io"

	CNIConfDir = "/etc/cni/net.d"
	CNIDataDir = "/var/lib/cni"
	// CNIBinDir is where a kforge bundle installs the CNI plugins;
	// DebianCNIBinDir is where Debian's containernetworking-plugins does.
	CNIBinDir       = "/opt/cni/bin"
	DebianCNIBinDir = "/usr/lib/cni"
	// BridgeConflist is the CNI config of single-node clusters.
	BridgeConflist = CNIConfDir + "/10-kforge-bridge.conflist"
	// KubeRouterConflist is the CNI config kube-router's init container
	// installs.
	KubeRouterConflist = CNIConfDir + "/10-kuberouter.conflist"
)

// Binaries kforge installs from a bundle.
const BinDir = "/usr/local/bin"

// kforge's own state on a host.
const (
	StateDir = "/var/lib/kforge"
	LogDir   = "/var/log/kforge"
	// SupervisorDir is the state of kforge's supervisor on hosts without
	// systemd.
	SupervisorDir = StateDir + "/supervisor"
	// EtcdWorkDir is where a snapshot restore works.
	EtcdWorkDir = StateDir + "/etcd"
	// KforgeBinary is where kforge installs itself on a host, for the
	// supervisor and for joins run there.
	KforgeBinary = StateDir + "/bin/kforge"
	// BundlesDir keeps the bundles uploaded to a host.
	BundlesDir = StateDir + "/bundles"
	// ImagesDir holds a bundle's images split per image while they are
	// imported.
	ImagesDir = StateDir + "/images"
	// BundleManifest and BundleSignature are, on a control plane, the
	// signed manifest of the bundle it installed, which its artifact
	// server gives the workers that join it.
	BundleManifest  = StateDir + "/bundle/manifest.json"
	BundleSignature = BundleManifest + ".sig"
	// ImagesStamp and BinariesStamp record what the bundle phase installed,
	// so that a re-run skips it.
	ImagesStamp   = StateDir + "/images.sha256"
	BinariesStamp = StateDir + "/binaries.sha256"
	// Installed lists every file the bundle phase has put on the host
	// since the last reset, written before each install, so that reset
	// removes them all, also after a kill mid-install or a later bundle
	// with fewer files.
	Installed = StateDir + "/installed"
	// ContainerdStarted is the sha256 of the bundle's containerd binary
	// that runs: a new one restarts it.
	ContainerdStarted = StateDir + "/containerd.sha256"
	// KubeletStarted is the sha256 of the kubelet binary that runs: a
	// new one (a bundle of another version) restarts it.
	KubeletStarted = StateDir + "/kubelet.sha256"
	// UpgradeDir keeps what a node ran before the last kforge upgrade
	// apply changed it (UpgradeBackup, described by UpgradeRecord), for
	// the automatic rollback and kforge upgrade rollback.
	UpgradeDir    = StateDir + "/upgrade"
	UpgradeBackup = UpgradeDir + "/previous.tar"
	UpgradeRecord = UpgradeDir + "/record.json"
	// RegistryAuth holds the registry credentials the cluster file's
	// registries name, resolved where kforge ran (0600), so that joins
	// and re-runs on this host find them.
	RegistryAuth = StateDir + "/registry-auth.json"
	// RunLock is the lock one kforge run at a time holds on a host, in a
	// tmpfs (nothing of it outlives a reboot); it holds the holder's pid
	// and command.
	RunLock = "/run/kforge.lock"
	// PreservedDir keeps the host's own files that kforge replaced (its
	// containerd config, unit, crictl.yaml), under their paths, so that
	// reset puts them back.
	PreservedDir = StateDir + "/preserved"
	// RunRecord says that a kforge run of a given command for a given
	// cluster began on the host; preflight writes it before anything else
	// changes, so a re-run after a kill knows the partial work is its own.
	RunRecord = StateDir + "/run.json"
	// BootstrapToken keeps the join token init made (0600).
	BootstrapToken = StateDir + "/bootstrap-token"
	// NoUpstreamResolvConf is the resolv.conf pods get on a host whose
	// resolvers listen on loopback only.
	NoUpstreamResolvConf = StateDir + "/resolv.conf"
	// SysctlConf makes pod networking's sysctls last across reboots.
	SysctlConf = "/etc/sysctl.d/99-kforge.conf"
)

// The host's own files kforge reads.
const (
	// SystemdUnitDir holds the units kforge writes (the OS's are under
	// /lib/systemd/system).
	SystemdUnitDir    = "/etc/systemd/system"
	ResolvConf        = "/etc/resolv.conf"
	SystemdResolvConf = "/run/systemd/resolve/resolv.conf"
	SystemCACertsDir  = "/etc/ssl/certs"
)

// Ports.
const (
	APIServerPort         = 6443
	EtcdClientPort        = 2379
	EtcdPeerPort          = 2380
	EtcdMetricsPort       = 2381
	KubeletPort           = 10250
	ControllerManagerPort = 10257
	SchedulerPort         = 10259
	// APIServerLBPort is where every node of a cluster with several
	// control planes reaches the API servers: its own load balancer on
	// 127.0.0.1 (k0s's node-local load balancer uses 7443, kubespray's
	// nginx-proxy the API server's own port).
	APIServerLBPort = 6444
	// HAProxyStatsPort serves the load balancer's /healthz on loopback.
	APIServerLBHealthPort = 6445
)

// ControlPlanePorts are the ports a control-plane host must have free.
var ControlPlanePorts = []int{APIServerPort, EtcdClientPort, EtcdPeerPort, KubeletPort, ControllerManagerPort, SchedulerPort}

// File modes.
const (
	// SecretMode is for private keys, kubeconfigs and tokens.
	SecretMode = 0o600
	// PublicMode is for certificates, manifests and configuration.
	PublicMode = 0o644
	// ExecMode is for binaries.
	ExecMode = 0o755
	// PrivateDirMode is for directories that hold secrets (etcd's data).
	PrivateDirMode = 0o700
)

// Names in the cluster.
const (
	ClusterName = "kubernetes"
	DNSDomain   = "cluster.local"
)

// Timeouts of the waits for the control plane, as kubeadm's defaults.
const (
	ControlPlaneTimeout = 4 * time.Minute
)
