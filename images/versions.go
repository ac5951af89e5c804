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
}

// supported lists the Kubernetes versions kforge can install. etcd, CoreDNS
// and pause are what kubeadm of the same version deploys
// (cmd/kubeadm/app/constants: DefaultEtcdVersion, CoreDNSVersion,
// PauseVersion). A version belongs here only once build-artifacts.sh builds
// every component of its row.
var supported = []Versions{
	{
		Kubernetes: "v1.35.4",
		Etcd:       "v3.6.6",
		CoreDNS:    "v1.13.1",
		Pause:      "3.10.1",
		KubeRouter: "v2.1.0",
		CNIPlugins: "v1.9.1",
	},
}

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
}

// All returns every image of the set, in a stable order.
func (s Set) All() []string {
	return []string{
		s.APIServer, s.ControllerManager, s.Scheduler, s.Proxy,
		s.Etcd, s.CoreDNS, s.Pause, s.KubeRouter,
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
		Etcd:       Registry + "/etcd:" + strings.TrimPrefix(v.Etcd, "v") + "-0",
		CoreDNS:    Registry + "/coredns/coredns:v" + strings.TrimPrefix(v.CoreDNS, "v"),
		Pause:      Registry + "/pause:" + strings.TrimPrefix(v.Pause, "v"),
		KubeRouter: KubeRouterRepository + ":" + v.KubeRouter,
	}, nil
}

// lessVersion orders "vMAJOR.MINOR.PATCH" strings numerically.
func lessVersion(a, b string) bool {
	pa := strings.Split(strings.TrimPrefix(a, "v"), ".")
	pb := strings.Split(strings.TrimPrefix(b, "v"), ".")
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
