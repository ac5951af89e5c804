package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"kforge.dev/kforge/images"
)

// CreateOptions say what goes into a bundle and where it comes from:
// exactly one of FromCache and Download.
type CreateOptions struct {
	// KubernetesVersion of the bundle; default images.Default().
	KubernetesVersion string
	// Output is the bundle's path. Empty means, with FromCache, a name
	// keyed by the content under FromCache/bundles/<version>/ (an existing
	// bundle there is reused), and with Download
	// ./kforge-bundle-<version>.tar.
	Output string

	// FromCache is a directory of local builds (images.Cache's layout,
	// filled by `make artifacts`); the images are built from its binaries.
	FromCache string
	// Base is the Debian base layer of images built from local builds;
	// zero means images.DefaultBase().
	Base images.Base
	// Download fetches official release binaries and pulls the images.
	Download *DownloadOptions

	// WithoutKubeadm leaves kubeadm out.
	WithoutKubeadm bool
	// Containerd is the containerd binary (containerd-shim-runc-v2 and,
	// if there, ctr are taken from the same directory) or a directory
	// holding them; empty leaves containerd out.
	Containerd string
	// Runc is the runc binary; empty leaves runc out.
	Runc string

	// Step is called when a step starts and returns the function that
	// ends it (reporter.Reporter.Step fits); nil reports nothing.
	Step func(title string) func(error)
	// Progress, if not nil, returns a writer that is fed the bytes of a
	// transfer of total bytes (-1 if unknown) and closed at its end.
	Progress func(title string, total int64) io.WriteCloser
	// Log receives details; nil discards them.
	Log io.Writer
}

// file is an entry of a bundle being made, and where its content is.
type file struct {
	path string // in the bundle
	src  string // on this machine
	mode int64
}

// Create makes a bundle and returns its path. The bundle is written to a
// temporary file next to its final path and renamed when complete.
func Create(ctx context.Context, o CreateOptions) (string, error) {
	if o.KubernetesVersion == "" {
		o.KubernetesVersion = images.Default()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if (o.FromCache == "") == (o.Download == nil) {
		return "", fmt.Errorf("a bundle is made either from local builds or from downloads: give exactly one of them")
	}
	set, err := images.For(o.KubernetesVersion)
	if err != nil {
		return "", err
	}
	version := set.Versions.Kubernetes

	var files []file
	var imagesTar, source string
	if o.FromCache != "" {
		source = "local builds"
		files, imagesTar, err = fromCache(ctx, o, set)
	} else {
		// Downloads go next to the output, which is on the same file
		// system and has room for the bundle.
		var work string
		work, err = workDir(filepath.Dir(o.output(version, "")))
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(work)
		source = o.Download.describe()
		files, imagesTar, err = download(ctx, o, set, work)
	}
	if err != nil {
		return "", err
	}
	rt, err := runtimeFiles(o.Containerd, o.Runc)
	if err != nil {
		return "", err
	}
	files = append(files, rt...)
	files = append(files, file{path: ImagesName, src: imagesTar, mode: 0o644})

	var m Manifest
	err = o.step("checksum "+fmt.Sprint(len(files))+" entries", func() error {
		m, err = manifestFor(set, o.arch(), source, files)
		return err
	})
	if err != nil {
		return "", err
	}
	raw, err := m.marshal()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	key := hex.EncodeToString(sum[:])[:12]
	out := o.output(version, key)
	if o.Output == "" && o.FromCache != "" {
		if _, err := os.Stat(out); err == nil {
			fmt.Fprintf(o.Log, "bundle %s is up to date\n", out)
			return out, nil
		}
	}
	err = o.step("write "+out, func() error { return write(ctx, o, out, raw, m, files) })
	if err != nil {
		return "", err
	}
	if o.Output == "" && o.FromCache != "" {
		pruneSiblings(out)
	}
	return out, nil
}

// arch is the architecture of the bundle's binaries and images: local
// builds are for the machine that built them; downloads are linux/amd64.
func (o CreateOptions) arch() string {
	if o.FromCache != "" {
		return runtime.GOARCH
	}
	return "amd64"
}

func workDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(dir, ".kforge-download-")
}

func (o CreateOptions) output(version, key string) string {
	switch {
	case o.Output != "":
		return o.Output
	case o.FromCache != "":
		return filepath.Join(o.FromCache, "bundles", version, "kforge-bundle-"+version+"-"+key+Extension)
	default:
		return "kforge-bundle-" + version + Extension
	}
}

func (o CreateOptions) step(title string, fn func() error) error {
	done := func(error) {}
	if o.Step != nil {
		done = o.Step(title)
	}
	err := fn()
	done(err)
	return err
}

func (o CreateOptions) progress(title string, total int64) io.WriteCloser {
	if o.Progress == nil {
		return nopCloser{io.Discard}
	}
	return o.Progress(title, total)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// manifestFor hashes every file and lists the images of the images entry,
// which must include every image of set.
func manifestFor(set images.Set, arch, source string, files []file) (Manifest, error) {
	m := Manifest{
		Format:            FormatVersion,
		KubernetesVersion: set.Versions.Kubernetes,
		Arch:              arch,
		Versions:          versionsOf(set.Versions, files),
		Source:            source,
	}
	for _, f := range files {
		st, err := os.Stat(f.src)
		if err != nil {
			return Manifest{}, fmt.Errorf("%s: %w", f.path, err)
		}
		if !st.Mode().IsRegular() {
			return Manifest{}, fmt.Errorf("%s: %s is not a regular file", f.path, f.src)
		}
		sum, err := images.FileSHA256(f.src)
		if err != nil {
			return Manifest{}, err
		}
		m.Entries = append(m.Entries, Entry{Path: f.path, Size: st.Size(), Mode: f.mode, SHA256: sum,
			ControlPlaneOnly: slices.Contains(controlPlaneBinaries, f.path)})
		if f.path == ImagesName {
			if m.Images, err = archiveImages(f.src); err != nil {
				return Manifest{}, err
			}
			for i := range m.Images {
				m.Images[i].ControlPlaneOnly = set.ControlPlaneOnly(m.Images[i].Name)
			}
		}
	}
	have := map[string]bool{}
	for _, img := range m.Images {
		have[img.Name] = true
	}
	for _, want := range set.All() {
		if !have[want] {
			return Manifest{}, fmt.Errorf("the image archive lacks %s", want)
		}
	}
	return m, m.validate()
}

// archiveImages lists the tagged images of a docker-save archive.
func archiveImages(path string) ([]Image, error) {
	tm, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		return nil, fmt.Errorf("reading the image list of %s: %w", path, err)
	}
	var out []Image
	for _, d := range tm {
		id := strings.TrimSuffix(filepath.Base(d.Config), ".json")
		id = "sha256:" + strings.TrimPrefix(id, "sha256:")
		for _, tag := range d.RepoTags {
			out = append(out, Image{Name: tag, ID: id})
		}
	}
	return out, nil
}
