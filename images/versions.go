// Package images knows which component versions go with each Kubernetes
// version kforge supports, and the upstream names of the images a cluster
// runs. kforge builds those images itself from the binaries of
// scripts/build-artifacts.sh and imports them under these names, so the
// kubelet never pulls: the tags here must be the versions that script builds
// (versions_test.go checks it).
package images

import (
	"fmt"
	"sort"
	"strings"
)

const (
	// Registry is where upstream publishes the Kubernetes images.
	Registry = "registry.k8s.io"
	// KubeRouterRepository is the kube-router image's upstream repository.
	KubeRouterRepository = "docker.io/cloudnativelabs/kube-router"
	// MetricsServerRepository and LocalPathRepository are the add-ons'
	// upstream repositories.
	MetricsServerRepository = Registry + "/metrics-server/metrics-server"
	LocalPathRepository     = "docker.io/rancher/local-path-provisioner"
	// HAProxyImage is the node-local API server load balancer: HAProxy
	// 2.6, Debian bookworm's, under the name of upstream's image of the
	// same branch (whose binary is in PATH as well, so one command line
	// serves both).
	HAProxyImage = "docker.io/library/haproxy:2.6"
	// KeepalivedImage holds the control plane's virtual IP (VRRP):
	// Debian bookworm's keepalived 2.2, which has no upstream image.
	KeepalivedImage = "kforge.dev/keepalived:2.2"
)

// Versions are the component versions that go with one Kubernetes version,
// spelled as scripts/build-artifacts.sh pins them (module versions with a
// "v", pause without).
type Versions struct {
	Kubernetes string // v1.35.4
	Etcd       string // v3.6.6
	CoreDNS    string // v1.13.1
	Pause      string // 3.10.1
	KubeRouter string // v2.1.0
	CNIPlugins string // v1.9.1: bridge, host-local, loopback, portmap
	// The container runtime a bundle carries: containerd 2.x (Kubernetes
	// 1.36 and newer need it), its runc, and crictl.
	Containerd string // v2.4.2
	Runc       string // v1.5.3
	Crictl     string // v1.37.0
	// The add-ons: metrics-server and local-path-provisioner.
	MetricsServer        string // v0.8.0
	LocalPathProvisioner string // v0.0.30
}

// Runtime versions, the same for every Kubernetes version.
const (
	kubeRouterVersion    = "v2.1.0"
	cniPluginsVersion    = "v1.9.1"
	containerdVersion    = "v2.4.2"
	runcVersion          = "v1.5.3"
	crictlVersion        = "v1.37.0"
	metricsServerVersion = "v0.8.0"
	localPathVersion     = "v0.0.30"
)

// row is one line of the supported table, with the shared versions added.
func row(kubernetes, etcd, coredns, pause string) Versions {
	return Versions{
		Kubernetes: kubernetes, Etcd: etcd, CoreDNS: coredns, Pause: pause,
		KubeRouter: kubeRouterVersion, CNIPlugins: cniPluginsVersion,
		Containerd: containerdVersion, Runc: runcVersion, Crictl: crictlVersion,
		MetricsServer: metricsServerVersion, LocalPathProvisioner: localPathVersion,
	}
}

// supported lists the Kubernetes versions kforge can install: the latest
// patch of the three newest minors. etcd, CoreDNS and pause are what
// kubeadm of the same version deploys (cmd/kubeadm/app/constants:
// DefaultEtcdVersion, CoreDNSVersion, PauseVersion). A version belongs here
// only once build-artifacts.sh builds every component of its row
// (versions_test.go compares the two tables).
var supported = []Versions{
	row("v1.35.4", "v3.6.6", "v1.13.1", "3.10.1"),
	row("v1.36.3", "v3.6.8", "v1.14.2", "3.10.2"),
	row("v1.37.2", "v3.7.0", "v1.14.6", "3.10.2"),
}

// MinContainerd is the oldest containerd that a Kubernetes version works
// with, for hosts that bring their own (runtime: host): Kubernetes 1.36
// dropped containerd 1.x. 1.6 is the oldest kforge has run 1.35 on.
func MinContainerd(kubernetesVersion string) string {
	if lessVersion(kubernetesVersion, "v1.36.0") {
		return "v1.6.0"
	}
	return "v2.0.0"
}

// LessVersion orders "vMAJOR.MINOR.PATCH" strings numerically; a missing
// "v" is allowed.
func LessVersion(a, b string) bool { return lessVersion(a, b) }

// Set is the images of one cluster, by upstream name and tag.
type Set struct {
	Versions Versions

	APIServer         string // registry.k8s.io/kube-apiserver:v1.35.4
	ControllerManager string // registry.k8s.io/kube-controller-manager:v1.35.4
	Scheduler         string // registry.k8s.io/kube-scheduler:v1.35.4
	Proxy             string // registry.k8s.io/kube-proxy:v1.35.4
	Etcd              string // registry.k8s.io/etcd:3.6.6-0
	CoreDNS           string // registry.k8s.io/coredns/coredns:v1.13.1
	Pause             string // registry.k8s.io/pause:3.10.1
	KubeRouter        string // docker.io/cloudnativelabs/kube-router:v2.1.0
	MetricsServer     string // registry.k8s.io/metrics-server/metrics-server:v0.8.0
	LocalPath         string // docker.io/rancher/local-path-provisioner:v0.0.30
	// HAProxy is the node-local load balancer in front of the API servers
	// of a cluster with several control planes.
	HAProxy string // docker.io/library/haproxy:2.6
	// Keepalived holds the optional virtual IP on the control planes.
	Keepalived string // kforge.dev/keepalived:2.2
}

// Worker returns the images a worker node runs: the pod sandbox,
// kube-proxy, the pod network, and CoreDNS and the add-ons (whose pods may
// be scheduled there; local-path-provisioner's image also runs its helper
// pods on every node). The control-plane images (etcd, the API server, the controller
// manager, the scheduler) run on control-plane nodes only.
func (s Set) Worker() []string {
	return []string{s.Proxy, s.CoreDNS, s.Pause, s.KubeRouter, s.MetricsServer, s.LocalPath, s.HAProxy}
}

// ControlPlaneOnly tells whether an image of the set runs on control-plane
// nodes only. Images that are not the cluster's (a test image) are not.
func (s Set) ControlPlaneOnly(image string) bool {
	switch image {
	case s.APIServer, s.ControllerManager, s.Scheduler, s.Etcd, s.Keepalived:
		return true
	}
	return false
}

// All returns every image of the set, in a stable order.
func (s Set) All() []string {
	return []string{
		s.APIServer, s.ControllerManager, s.Scheduler, s.Proxy,
		s.Etcd, s.CoreDNS, s.Pause, s.KubeRouter, s.MetricsServer, s.LocalPath,
		s.HAProxy, s.Keepalived,
	}
}

// Supported returns the supported Kubernetes versions, oldest first.
func Supported() []string {
	out := make([]string, 0, len(supported))
	for _, v := range supported {
		out = append(out, v.Kubernetes)
	}
	sort.Slice(out, func(i, j int) bool { return lessVersion(out[i], out[j]) })
	return out
}

// Default returns the newest supported Kubernetes version.
func Default() string {
	all := Supported()
	return all[len(all)-1]
}

// VersionsFor returns the component versions of a supported Kubernetes
// version, given as "v1.35.4" or "1.35.4".
func VersionsFor(kubernetesVersion string) (Versions, error) {
	want := "v" + strings.TrimPrefix(strings.TrimSpace(kubernetesVersion), "v")
	for _, v := range supported {
		if v.Kubernetes == want {
			return v, nil
		}
	}
	return Versions{}, fmt.Errorf("unsupported Kubernetes version %q; kforge supports %s",
		kubernetesVersion, strings.Join(Supported(), ", "))
}

// For returns the images of a cluster of the given Kubernetes version
// ("v1.35.4" or "1.35.4"), or an error naming the supported versions.
func For(kubernetesVersion string) (Set, error) {
	v, err := VersionsFor(kubernetesVersion)
	if err != nil {
		return Set{}, err
	}
	k8s := func(name string) string { return Registry + "/" + name + ":" + v.Kubernetes }
	return Set{
		Versions:          v,
		APIServer:         k8s("kube-apiserver"),
		ControllerManager: k8s("kube-controller-manager"),
		Scheduler:         k8s("kube-scheduler"),
		Proxy:             k8s("kube-proxy"),
		// Upstream etcd images carry the etcd version without "v" and an
		// image revision suffix.
		Etcd:          Registry + "/etcd:" + strings.TrimPrefix(v.Etcd, "v") + "-0",
		CoreDNS:       Registry + "/coredns/coredns:v" + strings.TrimPrefix(v.CoreDNS, "v"),
		Pause:         Registry + "/pause:" + strings.TrimPrefix(v.Pause, "v"),
		KubeRouter:    KubeRouterRepository + ":" + v.KubeRouter,
		MetricsServer: MetricsServerRepository + ":" + v.MetricsServer,
		LocalPath:     LocalPathRepository + ":" + v.LocalPathProvisioner,
		HAProxy:       HAProxyImage,
		Keepalived:    KeepalivedImage,
	}, nil
}

// lessVersion orders "vMAJOR.MINOR.PATCH" strings numerically.
func lessVersion(a, b string) bool {
	pa := strings.Split(strings.TrimPrefix(strings.SplitN(a, "-", 2)[0], "v"), ".")
	pb := strings.Split(strings.TrimPrefix(strings.SplitN(b, "-", 2)[0], "v"), ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		var x, y int
		fmt.Sscan(pa[i], &x)
		fmt.Sscan(pb[i], &y)
		if x != y {
			return x < y
		}
	}
	return len(pa) < len(pb)
}
