// Package bundle makes and reads kforge bundles: one file that carries
// everything a node needs without network access — the kubelet, kubectl,
// kubeadm, the CNI plugins, optionally containerd and runc, and every image
// of the cluster under its upstream name.
//
// A bundle is a zstd-compressed tar archive (.tar.zst):
//
//	manifest.json          versions, architecture, and path, size, mode and sha256 of every other entry
//	manifest.json.sha256   the manifest's own sha256, as sha256sum prints it
//	bin/kubelet            ... and kubectl, kubeadm, containerd, containerd-shim-runc-v2, ctr, runc, crictl
//	bin/cni/<plugin>       bridge, host-local, loopback, portmap
//	images.tar             all images, docker-save format (`ctr -n k8s.io images import`)
//
// The manifest marks the entries and images only control-plane nodes need
// (controlPlaneOnly): a worker installs and imports the rest.
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
	"slices"
	"strings"

	"kforge.dev/kforge/images"
	"kforge.dev/kforge/layout"
)

// FormatVersion is the bundle format this package writes and reads.
// Format 2 added the architecture and the control-plane-only marks.
const FormatVersion = 2

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
	Format            int    `json:"format"`
	KubernetesVersion string `json:"kubernetesVersion"`
	// Arch is the GOARCH of every binary and image: amd64, arm64.
	Arch     string   `json:"arch"`
	Versions Versions `json:"versions"`
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
	// The runtime's versions, empty when the bundle does not carry it.
	Containerd string `json:"containerd,omitempty"`
	Runc       string `json:"runc,omitempty"`
	Crictl     string `json:"crictl,omitempty"`
	// The add-ons' versions.
	MetricsServer        string `json:"metricsServer,omitempty"`
	LocalPathProvisioner string `json:"localPathProvisioner,omitempty"`
}

// versionsOf are the versions of a bundle with the given binaries.
func versionsOf(v images.Versions, files []file) Versions {
	out := Versions{
		Kubernetes: v.Kubernetes, Etcd: v.Etcd, CoreDNS: v.CoreDNS,
		Pause: v.Pause, KubeRouter: v.KubeRouter, CNIPlugins: v.CNIPlugins,
		MetricsServer: v.MetricsServer, LocalPathProvisioner: v.LocalPathProvisioner,
	}
	for _, f := range files {
		switch f.path {
		case BinDir + "containerd":
			out.Containerd = v.Containerd
		case BinDir + "runc":
			out.Runc = v.Runc
		case BinDir + "crictl":
			out.Crictl = v.Crictl
		}
	}
	return out
}

// controlPlaneBinaries are the bundle's binaries only control-plane nodes
// install: the clients an administrator uses there.
var controlPlaneBinaries = []string{BinDir + "kubectl", BinDir + "kubeadm"}

// Entry is one file of the bundle besides manifest.json.
type Entry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Mode   int64  `json:"mode"`
	SHA256 string `json:"sha256"`
	// ControlPlaneOnly entries are installed on control-plane nodes only.
	ControlPlaneOnly bool `json:"controlPlaneOnly,omitempty"`
}

// Image is one image in images.tar.
type Image struct {
	Name string `json:"name"`
	// ID is the digest of the image's config, as `ctr images ls` and
	// crictl show it.
	ID string `json:"id"`
	// ControlPlaneOnly images (etcd, the API server, the controller
	// manager, the scheduler) are imported on control-plane nodes only.
	ControlPlaneOnly bool `json:"controlPlaneOnly,omitempty"`
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

// Binaries are the entries under bin/ (CNI plugins included) that a node
// installs: all of them on a control-plane node, on a worker those not
// marked control-plane only.
func (m Manifest) Binaries(controlPlane bool) []Entry {
	var out []Entry
	for _, e := range m.Entries {
		if strings.HasPrefix(e.Path, BinDir) && (controlPlane || !e.ControlPlaneOnly) {
			out = append(out, e)
		}
	}
	return out
}

// InstallPath is where a node installs a binary entry: CNI plugins into
// /opt/cni/bin, the others into /usr/local/bin.
func InstallPath(e Entry) string {
	if strings.HasPrefix(e.Path, CNIDir) {
		return path.Join(layout.CNIBinDir, path.Base(e.Path))
	}
	return path.Join(layout.BinDir, path.Base(e.Path))
}

// NodeImages are the images a node imports: all of them on a
// control-plane node, on a worker those not marked control-plane only.
func (m Manifest) NodeImages(controlPlane bool) []Image {
	var out []Image
	for _, img := range m.Images {
		if controlPlane || !img.ControlPlaneOnly {
			out = append(out, img)
		}
	}
	return out
}

// HasRuntime tells whether the bundle carries containerd, its shim, ctr
// (which kforge runs to import images) and runc.
func (m Manifest) HasRuntime() bool {
	for _, p := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc"} {
		if _, ok := m.Entry(BinDir + p); !ok {
			return false
		}
	}
	return true
}

// CheckArch refuses a bundle built for another architecture than a host's
// (uname -m: x86_64, aarch64, ...).
func (m Manifest) CheckArch(unameM string) error {
	goarch := map[string]string{"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
		"armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}[strings.TrimSpace(unameM)]
	if goarch == "" {
		return fmt.Errorf("the host's architecture (uname -m) %q is not one kforge knows (x86_64, aarch64, armv7l, ppc64le, s390x, riscv64); the bundle is for linux/%s", strings.TrimSpace(unameM), m.Arch)
	}
	if goarch != m.Arch {
		return fmt.Errorf("the bundle is for linux/%s and the host is linux/%s (uname -m: %s): build or download a bundle for linux/%s",
			m.Arch, goarch, strings.TrimSpace(unameM), goarch)
	}
	return nil
}

// validate checks what a reader relies on: a known format, clean unique
// relative paths, and hex sha256 sums.
func (m Manifest) validate() error {
	if m.Format != FormatVersion {
		return fmt.Errorf("bundle format %d, this kforge reads format %d: make the bundle again with this kforge (`make artifacts` or `kforge bundle`)", m.Format, FormatVersion)
	}
	if m.KubernetesVersion == "" {
		return fmt.Errorf("no Kubernetes version")
	}
	if m.Arch == "" {
		return fmt.Errorf("no architecture")
	}
	seen := map[string]bool{ManifestName: true}
	for _, e := range m.Entries {
		if e.Path == "" || path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path || e.Path == ".." || strings.HasPrefix(e.Path, "../") {
			return fmt.Errorf("entry %q: not a clean relative path", e.Path)
		}
		if !AllowedEntry(e.Path) {
			return fmt.Errorf("entry %q: not a file kforge installs (it installs %s)", e.Path, strings.Join(allowedEntries(), ", "))
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

// AllowedBinaries are the only names kforge installs from a bundle's bin/
// into /usr/local/bin.
var AllowedBinaries = []string{"kubelet", "kubectl", "kubeadm", "containerd", "containerd-shim-runc-v2", "ctr", "runc", "crictl"}

// AllowedEntry tells whether p is an entry a bundle may hold: one of
// AllowedBinaries under bin/, one of CNIPlugins under bin/cni/, or
// images.tar.
func AllowedEntry(p string) bool {
	switch {
	case p == ImagesName:
		return true
	case strings.HasPrefix(p, CNIDir):
		return slices.Contains(CNIPlugins, strings.TrimPrefix(p, CNIDir))
	case strings.HasPrefix(p, BinDir):
		return slices.Contains(AllowedBinaries, strings.TrimPrefix(p, BinDir))
	}
	return false
}

func allowedEntries() []string {
	out := []string{ImagesName}
	for _, b := range AllowedBinaries {
		out = append(out, BinDir+b)
	}
	for _, p := range CNIPlugins {
		out = append(out, CNIDir+p)
	}
	return out
}

func (m Manifest) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
