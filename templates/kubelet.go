package templates

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strings"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// Cgroup drivers of the kubelet and of containerd's runc.
const (
	CgroupDriverSystemd  = "systemd"
	CgroupDriverCgroupfs = "cgroupfs"
)

// Kubelet is the data of a node's kubelet files: its KubeletConfiguration,
// the flags file, and the systemd unit with its drop-in.
type Kubelet struct {
	// NodeName becomes --hostname-override; empty keeps the hostname.
	NodeName string
	// NodeIP becomes --node-ip; empty lets the kubelet pick.
	NodeIP string

	// CgroupDriver is systemd when systemd runs the host and manages its
	// cgroups, cgroupfs otherwise. It must match containerd's SystemdCgroup.
	CgroupDriver string
	// CgroupV1 is a host fact: the host has no unified cgroup v2 hierarchy.
	// The kubelet then needs failCgroupV1: false to start at all.
	CgroupV1 bool
	// CgroupRoot, when set, puts every pod cgroup under it; nodes that
	// share a host's cgroup hierarchies (node containers) each need one
	// of their own, created in every hierarchy before the kubelet starts.
	CgroupRoot string
	// DisableDiskEviction turns off eviction and image garbage collection
	// on disk pressure, for node containers whose disk is the host's.
	DisableDiskEviction bool
	// AllowSwap sets failSwapOn: false.
	AllowSwap bool
	// ProtectKernelDefaults makes the kubelet refuse to start when the
	// kernel settings it needs differ, instead of changing them; true
	// once the host holds KernelDefaults().
	ProtectKernelDefaults bool

	// ClusterDNS is CoreDNS's service IP, the tenth of the service subnet.
	ClusterDNS []string
	// ClusterDomain defaults to cluster.local.
	ClusterDomain string
	// ResolvConf defaults to /etc/resolv.conf; hosts running
	// systemd-resolved need /run/systemd/resolve/resolv.conf.
	ResolvConf string

	// Paths; empty means the Default* constant.
	ClientCAFile             string
	StaticPodPath            string
	ContainerRuntimeEndpoint string
	ConfigPath               string
	FlagsPath                string
	KubeconfigPath           string
	BootstrapKubeconfigPath  string
	BinaryPath               string
	UnitPath                 string
	DropInPath               string

	// ExtraArgs are further kubelet flags, name (without dashes) to value;
	// the cluster file's validation refuses one kforge sets itself.
	ExtraArgs map[string]string
}

// KernelDefaults are the sysctls the kubelet checks under
// protectKernelDefaults (its setupKernelTunables), in the order a sysctl.d
// file lists them.
func KernelDefaults() [][2]string {
	return [][2]string{
		{"vm.overcommit_memory", "1"},
		{"vm.panic_on_oom", "0"},
		{"kernel.panic", "10"},
		{"kernel.panic_on_oops", "1"},
		{"kernel.keys.root_maxkeys", "1000000"},
		{"kernel.keys.root_maxbytes", "25000000"},
	}
}

// TLSCipherSuites are the kubelet server's cipher suites.
func (k Kubelet) TLSCipherSuites() []string { return strings.Split(layout.TLSCipherSuites, ",") }

// TLSMinVersion is the oldest TLS version the kubelet accepts.
func (k Kubelet) TLSMinVersion() string { return layout.TLSMinVersion }

// RenderKubelet renders the KubeletConfiguration, the flags file, the
// systemd unit and its drop-in, all readable by root only.
func RenderKubelet(k Kubelet) ([]host.File, error) {
	k = k.withDefaults()
	if err := k.validate(); err != nil {
		return nil, err
	}
	var out []host.File
	for _, f := range []struct{ name, path string }{
		{"kubelet/config.yaml", k.ConfigPath},
		{"kubelet/flags.env", k.FlagsPath},
		{"kubelet/kubelet.service", k.UnitPath},
		{"kubelet/10-kforge.conf", k.DropInPath},
	} {
		data, err := Render(f.name, k)
		if err != nil {
			return nil, err
		}
		out = append(out, host.File{Path: f.path, Data: data, Mode: layout.SecretMode})
	}
	return out, nil
}

func (k Kubelet) withDefaults() Kubelet {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&k.ClusterDomain, layout.DNSDomain)
	def(&k.ResolvConf, layout.ResolvConf)
	def(&k.ClientCAFile, layout.CACert)
	def(&k.StaticPodPath, layout.ManifestsDir)
	def(&k.ContainerRuntimeEndpoint, layout.ContainerRuntimeEndpoint)
	def(&k.ConfigPath, layout.KubeletConfig)
	def(&k.FlagsPath, layout.KubeletFlagsEnv)
	def(&k.KubeconfigPath, layout.KubeletConf)
	def(&k.BootstrapKubeconfigPath, layout.BootstrapKubeletConf)
	def(&k.BinaryPath, layout.KubeletBinary)
	def(&k.UnitPath, layout.KubeletUnit)
	def(&k.DropInPath, layout.KubeletUnitDropIn)
	return k
}

func (k Kubelet) validate() error {
	var errs []error
	if k.CgroupDriver != CgroupDriverSystemd && k.CgroupDriver != CgroupDriverCgroupfs {
		errs = append(errs, fmt.Errorf("CgroupDriver %q is neither systemd nor cgroupfs", k.CgroupDriver))
	}
	if k.CgroupRoot != "" && !path.IsAbs(k.CgroupRoot) {
		errs = append(errs, fmt.Errorf("CgroupRoot %q is not an absolute cgroup path", k.CgroupRoot))
	}
	if len(k.ClusterDNS) == 0 {
		errs = append(errs, errors.New("ClusterDNS is empty: it is the tenth address of the service subnet"))
	}
	for _, ip := range k.ClusterDNS {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("ClusterDNS: %q is not an IP address", ip))
		}
	}
	if k.NodeIP != "" {
		for _, ip := range strings.Split(k.NodeIP, ",") {
			if net.ParseIP(ip) == nil {
				errs = append(errs, fmt.Errorf("NodeIP %q is not an IP address", k.NodeIP))
			}
		}
	}
	if !strings.HasPrefix(k.ContainerRuntimeEndpoint, "unix://") {
		errs = append(errs, fmt.Errorf("ContainerRuntimeEndpoint %q is not a unix:// socket", k.ContainerRuntimeEndpoint))
	}
	for field, p := range map[string]string{
		"ClientCAFile": k.ClientCAFile, "StaticPodPath": k.StaticPodPath, "ResolvConf": k.ResolvConf,
		"ConfigPath": k.ConfigPath, "FlagsPath": k.FlagsPath, "KubeconfigPath": k.KubeconfigPath,
		"BootstrapKubeconfigPath": k.BootstrapKubeconfigPath, "BinaryPath": k.BinaryPath,
		"UnitPath": k.UnitPath, "DropInPath": k.DropInPath,
	} {
		if !path.IsAbs(p) || strings.ContainsAny(p, " \t\n\"'\\$%`") {
			errs = append(errs, fmt.Errorf("%s %q is not an absolute path without spaces, quotes, $ or %%", field, p))
		}
	}
	// The flags file is a systemd environment file: one double-quoted
	// value, split on spaces by ExecStart.
	for _, a := range k.Args() {
		if strings.ContainsAny(a, " \t\n\"'\\$`") {
			errs = append(errs, fmt.Errorf("kubelet flag %q: spaces, quotes, $ and backslashes cannot pass through the flags file", a))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubelet files: %w", err)
	}
	return nil
}

// Args are the kubelet's flags, sorted by name: what the flags file holds
// and what a supervisor other than systemd passes to BinaryPath.
func (k Kubelet) Args() []string {
	k = k.withDefaults()
	return flags(k.defaultArgs(), k.ExtraArgs)
}

// defaultArgs are the flags kforge sets.
func (k Kubelet) defaultArgs() map[string]string {
	a := map[string]string{
		"bootstrap-kubeconfig": k.BootstrapKubeconfigPath,
		"config":               k.ConfigPath,
		"kubeconfig":           k.KubeconfigPath,
	}
	if k.NodeName != "" {
		a["hostname-override"] = k.NodeName
	}
	if k.NodeIP != "" {
		a["node-ip"] = k.NodeIP
	}
	return a
}

// FailCgroupV1 is the kubelet's failCgroupV1: false on cgroup v1 hosts so
// that the kubelet runs there, true elsewhere.
func (k Kubelet) FailCgroupV1() bool { return !k.CgroupV1 }
