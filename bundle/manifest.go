// Package bundle makes and reads kforge bundles: one file that carries
// everything a node needs without network access — the kubelet, kubectl,
// kubeadm, the CNI plugins, optionally containerd and runc, and every image
// of the cluster under its upstream name.
//
// A bundle is a zstd-compressed tar archive (.tar.zst):
//
//	manifest.json          versions, and path, size, mode and sha256 of every other entry
//	manifest.json.sha256   the manifest's own sha256, as sha256sum prints it
//	bin/kubelet            ... and kubectl, kubeadm, containerd, containerd-shim-runc-v2, ctr, runc
//	bin/cni/<plugin>       bridge, host-local, loopback, portmap
//	images.tar             all images, docker-save format (`ctr -n k8s.io images import`)
//
// manifest.json comes first, so Inspect decompresses only the start of the
// file. zstd because the binaries are half of a bundle and shrink to a
// third: measured on a v1.35.4 bundle, 436 MiB as plain tar and 277 MiB
// with zstd's default level, compressed in under a second on two cores and
// decompressed faster than a disk reads. The image layers inside images.tar
// are gzip-compressed already, as registries serve them, so containerd
// stores them unchanged. Readers also accept an uncompressed tar.
package bundle

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"kforge.dev/kforge/images"
)

// FormatVersion is the bundle format this package writes and reads.
const FormatVersion = 1

// Entry names of a bundle.
const (
	ManifestName = "manifest.json"
	ImagesName   = "images.tar"
	// Extension is the file name extension of bundles.
	Extension = ".tar.zst"
	BinDir    = "bin/"
	CNIDir    = "bin/cni/"
)

// Manifest describes a bundle.
type Manifest struct {
	Format            int      `json:"format"`
	KubernetesVersion string   `json:"kubernetesVersion"`
	Versions          Versions `json:"versions"`
	// Source says where the binaries and images came from: "local builds"
	// or the download URL and registry.
	Source  string  `json:"source"`
	Entries []Entry `json:"entries"`
	Images  []Image `json:"images"`
}

// Versions are the component versions of the bundle.
type Versions struct {
	Kubernetes string `json:"kubernetes"`
	Etcd       string `json:"etcd"`
	CoreDNS    string `json:"coredns"`
	Pause      string `json:"pause"`
	KubeRouter string `json:"kubeRouter"`
	CNIPlugins string `json:"cniPlugins"`
}

func versionsOf(v images.Versions) Versions {
	return Versions{
		Kubernetes: v.Kubernetes, Etcd: v.Etcd, CoreDNS: v.CoreDNS,
		Pause: v.Pause, KubeRouter: v.KubeRouter, CNIPlugins: v.CNIPlugins,
	}
}

// Entry is one file of the bundle besides manifest.json.
type Entry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Mode   int64  `json:"mode"`
	SHA256 string `json:"sha256"`
}

// Image is one image in images.tar.
type Image struct {
	Name string `json:"name"`
	// ID is the digest of the image's config, as `ctr images ls` and
	// crictl show it.
	ID string `json:"id"`
}

// Entry returns the entry with the given path.
func (m Manifest) Entry(p string) (Entry, bool) {
	for _, e := range m.Entries {
		if e.Path == p {
			return e, true
		}
	}
	return Entry{}, false
}

// Binaries are the entries under bin/ (CNI plugins included).
func (m Manifest) Binaries() []Entry {
	var out []Entry
	for _, e := range m.Entries {
		if strings.HasPrefix(e.Path, BinDir) {
			out = append(out, e)
		}
	}
	return out
}

// validate checks what a reader relies on: a known format, clean unique
// relative paths, and hex sha256 sums.
func (m Manifest) validate() error {
	if m.Format != FormatVersion {
		return fmt.Errorf("bundle format %d, this kforge reads format %d", m.Format, FormatVersion)
	}
	if m.KubernetesVersion == "" {
		return fmt.Errorf("no Kubernetes version")
	}
	seen := map[string]bool{ManifestName: true}
	for _, e := range m.Entries {
		if e.Path == "" || path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path || strings.HasPrefix(e.Path, "../") {
			return fmt.Errorf("entry %q: not a clean relative path", e.Path)
		}
		if seen[e.Path] {
			return fmt.Errorf("entry %s listed twice", e.Path)
		}
		seen[e.Path] = true
		if len(e.SHA256) != 64 || strings.Trim(e.SHA256, "0123456789abcdef") != "" {
			return fmt.Errorf("entry %s: sha256 %q is not 64 hex digits", e.Path, e.SHA256)
		}
		if e.Size < 0 {
			return fmt.Errorf("entry %s: negative size", e.Path)
		}
	}
	return nil
}

func (m Manifest) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
