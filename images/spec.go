package images

import "strings"

// Echo is the small web server image kforge's tests run as a workload: it
// answers every HTTP request on port 8080 with the pod's hostname. Its
// source is scripts/artifacts/echo.
const Echo = "kforge.dev/echo:v1"

// EchoVersion is the cache version directory of the echo binary.
const EchoVersion = "v1"

// Spec describes one image kforge builds from local binaries.
type Spec struct {
	Ref        string   // upstream name and tag
	Debian     bool     // on the Debian base layer instead of an empty one
	Files      []File   // one layer above the base
	Entrypoint []string // as upstream's image, where it matters
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	Ports      []string // exposed ports, e.g. "53/udp"
}

// DefaultPath is the PATH of every image; kubeadm's static pods name their
// binaries without a directory (command: [kube-apiserver, ...]).
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Specs are the images of a cluster, made from the binaries in c. Paths and
// entrypoints follow the upstream images: Kubernetes and etcd binaries in
// /usr/local/bin, /coredns, /pause.
func Specs(s Set, c Cache) []Spec {
	v := s.Versions
	k8s := func(ref, name string) Spec {
		bin := "/usr/local/bin/" + name
		return Spec{
			Ref:        ref,
			Files:      []File{{Src: c.Binary("kubernetes", v.Kubernetes, name), Dst: bin}},
			Entrypoint: []string{bin},
		}
	}
	etcd := Spec{Ref: s.Etcd, Cmd: []string{"/usr/local/bin/etcd"}}
	for _, b := range []string{"etcd", "etcdctl", "etcdutl"} {
		etcd.Files = append(etcd.Files, File{Src: c.Binary("etcd", v.Etcd, b), Dst: "/usr/local/bin/" + b})
	}
	proxy := k8s(s.Proxy, "kube-proxy")
	proxy.Debian = true
	return []Spec{
		k8s(s.APIServer, "kube-apiserver"),
		k8s(s.ControllerManager, "kube-controller-manager"),
		k8s(s.Scheduler, "kube-scheduler"),
		proxy,
		etcd,
		{
			// Upstream runs CoreDNS as a non-root user with a file
			// capability to bind port 53; kforge's image runs it as root,
			// which needs neither.
			Ref:        s.CoreDNS,
			Files:      []File{{Src: c.Binary("coredns", v.CoreDNS, "coredns"), Dst: "/coredns"}},
			Entrypoint: []string{"/coredns"},
			Ports:      []string{"53/tcp", "53/udp"},
		},
		{
			Ref:        s.Pause,
			Files:      []File{{Src: c.Binary("pause", v.Pause, "pause"), Dst: "/pause"}},
			Entrypoint: []string{"/pause"},
			User:       "65535:65535",
		},
		{
			Ref:        s.KubeRouter,
			Debian:     true,
			Files:      []File{{Src: c.Binary("kube-router", v.KubeRouter, "kube-router"), Dst: "/usr/local/bin/kube-router"}},
			Entrypoint: []string{"/usr/local/bin/kube-router"},
			WorkingDir: "/root",
		},
		{
			Ref:        s.MetricsServer,
			Files:      []File{{Src: c.Binary("metrics-server", v.MetricsServer, "metrics-server"), Dst: "/metrics-server"}},
			Entrypoint: []string{"/metrics-server"},
			User:       "65534:65534",
			Ports:      []string{"10250/tcp"},
		},
		{
			// On the Debian base: the provisioner runs its helper pods
			// (mkdir and rm of a volume's directory under /bin/sh) from
			// its own image.
			Ref:        s.LocalPath,
			Debian:     true,
			Files:      []File{{Src: c.Binary("local-path-provisioner", v.LocalPathProvisioner, "local-path-provisioner"), Dst: "/usr/bin/local-path-provisioner"}},
			Entrypoint: []string{"local-path-provisioner"},
		},
		{
			// Debian's haproxy package is part of the base layer; the
			// static pod gives the command and mounts the configuration.
			Ref:        s.HAProxy,
			Debian:     true,
			Entrypoint: []string{"/usr/sbin/haproxy"},
		},
		{
			// Debian's keepalived, also in the base layer.
			Ref:        s.Keepalived,
			Debian:     true,
			Entrypoint: []string{"/usr/sbin/keepalived"},
		},
	}
}

// EchoSpec is the echo test image, from c's bin/echo/v1/echo.
func EchoSpec(c Cache) Spec {
	return Spec{
		Ref:        Echo,
		Files:      []File{{Src: c.Binary("echo", EchoVersion, "echo"), Dst: "/echo"}},
		Entrypoint: []string{"/echo"},
		Ports:      []string{"8080/tcp"},
	}
}

func (s Spec) env() []string {
	for _, e := range s.Env {
		if strings.HasPrefix(e, "PATH=") {
			return s.Env
		}
	}
	return append([]string{DefaultPath}, s.Env...)
}

// KforgeRepository is the name of kforge's own image: kforge's binary
// alone, which runs the parts of kforge that live in the cluster (the
// kubelet-serving CSR approver). Its tag is KforgeTag of the binary.
const KforgeRepository = "kforge.dev/kforge"

// KforgeTag tags kforge's image by its binary's sha256, so that a new
// kforge makes a new image.
func KforgeTag(sha256hex string) string { return "sha256-" + sha256hex[:16] }

// KforgeSpec is kforge's image from its binary, run as nobody.
func KforgeSpec(binary, sha256hex string) Spec {
	return Spec{
		Ref:        KforgeRepository + ":" + KforgeTag(sha256hex),
		Files:      []File{{Src: binary, Dst: "/usr/local/bin/kforge"}},
		Entrypoint: []string{"/usr/local/bin/kforge"},
		User:       "65534:65534",
	}
}

// Rehome is ref under repository instead of its registry, with the same
// path and tag: Rehome("registry.k8s.io/coredns/coredns:v1.14.6",
// "harbor.example/k8s") is "harbor.example/k8s/coredns/coredns:v1.14.6",
// as `crane copy` or a registry's replication lays images out. The cluster
// file's imageRepository uses it for the add-ons' images.
func Rehome(ref, repository string) string {
	path := ref
	if first, rest, ok := strings.Cut(ref, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		path = rest
	}
	return strings.TrimSuffix(repository, "/") + "/" + path
}
