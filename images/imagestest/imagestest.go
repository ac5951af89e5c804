// Package imagestest makes fake local builds for tests: small files where
// the real binaries would be, and a Debian base built by a fake debootstrap.
package imagestest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kforge.dev/kforge/images"
)

// Cache fills a new temporary directory with a fake binary for every file
// a cluster of set needs (each holding its own name and component), plus
// the echo binary, and returns it.
func Cache(t testing.TB, set images.Set) images.Cache {
	t.Helper()
	c := images.Cache{Dir: t.TempDir()}
	v := set.Versions
	bins := map[string][]string{
		"kubernetes/" + v.Kubernetes:                       {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet", "kubectl", "kubeadm"},
		"etcd/" + v.Etcd:                                   {"etcd", "etcdctl", "etcdutl"},
		"coredns/" + v.CoreDNS:                             {"coredns"},
		"pause/" + v.Pause:                                 {"pause"},
		"kube-router/" + v.KubeRouter:                      {"kube-router"},
		"cni-plugins/" + v.CNIPlugins:                      {"bridge", "host-local", "loopback", "portmap"},
		"echo/" + images.EchoVersion:                       {"echo"},
		"containerd/" + v.Containerd:                       {"containerd", "containerd-shim-runc-v2", "ctr"},
		"runc/" + v.Runc:                                   {"runc"},
		"crictl/" + v.Crictl:                               {"crictl"},
		"metrics-server/" + v.MetricsServer:                {"metrics-server"},
		"local-path-provisioner/" + v.LocalPathProvisioner: {"local-path-provisioner"},
	}
	for dir, names := range bins {
		component, version, _ := strings.Cut(dir, "/")
		for _, n := range names {
			WriteFile(t, c.Binary(component, version, n), fmt.Sprintf("#!/bin/sh\n# fake %s %s %s\n", component, version, n))
		}
	}
	return c
}

// WriteFile writes an executable file, making its directory.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Base returns a Debian base whose debootstrap is a script that makes a
// root file system with /usr/sbin/iptables and /etc/os-release, and appends
// a line to the file runs each time it runs. Packages are as in
// images.DefaultBase.
func Base(t testing.TB, runs string) images.Base {
	t.Helper()
	script := filepath.Join(t.TempDir(), "debootstrap")
	WriteFile(t, script, `#!/bin/sh
# fake debootstrap: OPTIONS... SUITE TARGET MIRROR
set -e
eval "target=\${$(($# - 1))}"
mkdir -p "$target/usr/sbin" "$target/etc" "$target/dev" "$target/var/lib/apt/lists"
echo "fake iptables" > "$target/usr/sbin/iptables"
chmod 755 "$target/usr/sbin/iptables"
echo "ID=debian" > "$target/etc/os-release"
echo junk > "$target/var/lib/apt/lists/junk"
echo junk > "$target/dev/junk"
mkdir -p "$target/usr/share/locale/de" "$target/usr/share/doc/iptables"
echo junk > "$target/usr/share/locale/de/iptables.mo"
echo junk > "$target/usr/share/doc/iptables/changelog.gz"
echo "GPL" > "$target/usr/share/doc/iptables/copyright"
echo "$*" >> "`+runs+`"
`)
	b := images.DefaultBase()
	b.Debootstrap = []string{script}
	return b
}
