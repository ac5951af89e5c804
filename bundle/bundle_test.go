package bundle_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/images/imagestest"
)

func set(t *testing.T) images.Set {
	s, err := images.For(images.Default())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fromCache creates a bundle from fake local builds.
func fromCache(t *testing.T, o bundle.CreateOptions) (string, images.Cache) {
	t.Helper()
	c := imagestest.Cache(t, set(t))
	o.FromCache = c.Dir
	o.Base = imagestest.Base(t, filepath.Join(t.TempDir(), "runs"))
	p, err := bundle.Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

func TestCreateInspectVerify(t *testing.T) {
	s := set(t)
	var steps []string
	p, c := fromCache(t, bundle.CreateOptions{Step: func(title string) func(error) {
		steps = append(steps, title)
		return func(error) {}
	}})
	if !strings.HasPrefix(p, c.Path("bundles", s.Versions.Kubernetes)+"/kforge-bundle-"+s.Versions.Kubernetes+"-") {
		t.Errorf("bundle at %s, not in the cache's bundles directory", p)
	}
	if len(steps) < 2 {
		t.Errorf("steps reported: %q", steps)
	}
	m, err := bundle.Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.KubernetesVersion != s.Versions.Kubernetes || m.Versions.Etcd != s.Versions.Etcd || m.Versions.CNIPlugins != s.Versions.CNIPlugins || m.Source != "local builds" {
		t.Errorf("manifest versions: %+v", m)
	}
	var paths []string
	for _, e := range m.Entries {
		paths = append(paths, e.Path)
	}
	want := []string{"bin/kubelet", "bin/kubectl", "bin/kubeadm", "bin/cni/bridge", "bin/cni/host-local", "bin/cni/loopback", "bin/cni/portmap",
		"bin/containerd", "bin/containerd-shim-runc-v2", "bin/ctr", "bin/runc", "bin/crictl", "images.tar"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("entries %q, want %q", paths, want)
	}
	if m.Arch != runtime.GOARCH || !m.HasRuntime() || m.Versions.Containerd != s.Versions.Containerd || m.Versions.Runc != s.Versions.Runc || m.Versions.Crictl != s.Versions.Crictl {
		t.Errorf("manifest: arch %q, runtime %v, versions %+v", m.Arch, m.HasRuntime(), m.Versions)
	}
	// A worker installs neither kubectl nor kubeadm, and imports no
	// control-plane image.
	var workerBins []string
	for _, e := range m.Binaries(false) {
		workerBins = append(workerBins, e.Path)
	}
	if slices.Contains(workerBins, "bin/kubectl") || slices.Contains(workerBins, "bin/kubeadm") || !slices.Contains(workerBins, "bin/kubelet") || !slices.Contains(workerBins, "bin/runc") {
		t.Errorf("a worker's binaries: %q", workerBins)
	}
	var workerImages []string
	for _, img := range m.NodeImages(false) {
		workerImages = append(workerImages, img.Name)
	}
	wantWorker := append(s.Worker(), images.Echo)
	sort.Strings(workerImages)
	sort.Strings(wantWorker)
	if !reflect.DeepEqual(workerImages, wantWorker) {
		t.Errorf("a worker's images %q, want %q", workerImages, wantWorker)
	}
	if len(m.NodeImages(true)) != len(m.Images) {
		t.Errorf("a control plane imports %d of %d images", len(m.NodeImages(true)), len(m.Images))
	}
	var names []string
	for _, img := range m.Images {
		names = append(names, img.Name)
		if !strings.HasPrefix(img.ID, "sha256:") || len(img.ID) != 71 {
			t.Errorf("image %s: ID %q", img.Name, img.ID)
		}
	}
	wantImages := append(s.All(), images.Echo)
	sort.Strings(names)
	sort.Strings(wantImages)
	if !reflect.DeepEqual(names, wantImages) {
		t.Errorf("images %q, want %q", names, wantImages)
	}
	if err := bundle.Verify(p); err != nil {
		t.Fatal(err)
	}
	// Walk hands out the real content.
	got := map[string]string{}
	if _, err := bundle.Walk(context.Background(), p, func(e bundle.Entry, r io.Reader) error {
		if strings.HasPrefix(e.Path, "bin/") {
			b, err := io.ReadAll(r)
			got[e.Path] = string(b)
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want, _ := os.ReadFile(c.Binary("kubernetes", s.Versions.Kubernetes, "kubelet")); got["bin/kubelet"] != string(want) {
		t.Errorf("bin/kubelet is %q, want %q", got["bin/kubelet"], want)
	}
	if want, _ := os.ReadFile(c.Binary("cni-plugins", s.Versions.CNIPlugins, "portmap")); got["bin/cni/portmap"] != string(want) {
		t.Errorf("bin/cni/portmap is %q, want %q", got["bin/cni/portmap"], want)
	}
	if bins := m.Binaries(true); len(bins) != 12 || bins[0].Mode != 0o755 {
		t.Errorf("Binaries() = %+v", bins)
	}
}

// TestCreateFromCacheIsCached: a second run with the same builds returns
// the same file without writing it; a changed binary makes a new bundle
// and removes the old one.
func TestCreateFromCacheIsCached(t *testing.T) {
	s := set(t)
	c := imagestest.Cache(t, s)
	o := bundle.CreateOptions{FromCache: c.Dir, Base: imagestest.Base(t, filepath.Join(t.TempDir(), "runs"))}
	first, err := bundle.Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(first)
	var wrote bool
	o.Step = func(title string) func(error) {
		if strings.HasPrefix(title, "write") {
			wrote = true
		}
		return func(error) {}
	}
	second, err := bundle.Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(second)
	if second != first || wrote || !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("second run: %s (first %s), written again: %v", second, first, wrote)
	}
	imagestest.WriteFile(t, c.Binary("kubernetes", s.Versions.Kubernetes, "kubectl"), "new kubectl")
	third, err := bundle.Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if third == first {
		t.Fatal("a changed kubectl kept the bundle")
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("the outdated bundle is still there")
	}
}

func TestCheckArch(t *testing.T) {
	m := bundle.Manifest{Arch: "amd64"}
	if err := m.CheckArch("x86_64\n"); err != nil {
		t.Errorf("x86_64: %v", err)
	}
	err := m.CheckArch("aarch64")
	if err == nil || !strings.Contains(err.Error(), "the bundle is for linux/amd64 and the host is linux/arm64") {
		t.Errorf("aarch64: %v", err)
	}
	if err := m.CheckArch("mips"); err == nil {
		t.Error("mips accepted")
	}
}

func TestCreateOptions(t *testing.T) {
	s := set(t)
	c := imagestest.Cache(t, s)
	dir := t.TempDir()
	ctrd := filepath.Join(dir, "usr-bin")
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc"} {
		imagestest.WriteFile(t, filepath.Join(ctrd, b), "fake "+b)
	}
	out := filepath.Join(dir, "out", "b.tar")
	p, err := bundle.Create(context.Background(), bundle.CreateOptions{
		FromCache: c.Dir, Base: imagestest.Base(t, filepath.Join(dir, "runs")), Output: out,
		WithoutKubeadm: true, Containerd: filepath.Join(ctrd, "containerd"), Runc: filepath.Join(ctrd, "runc"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if p != out {
		t.Errorf("written to %s, want %s", p, out)
	}
	m, err := bundle.Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bin/containerd", "bin/containerd-shim-runc-v2", "bin/ctr", "bin/runc"} {
		if _, ok := m.Entry(want); !ok {
			t.Errorf("no %s", want)
		}
	}
	if _, ok := m.Entry("bin/kubeadm"); ok {
		t.Error("kubeadm is in the bundle although left out")
	}
	if err := bundle.Verify(p); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "out", ".*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}

	for _, bad := range []bundle.CreateOptions{
		{},
		{FromCache: c.Dir, Download: &bundle.DownloadOptions{}},
		{FromCache: c.Dir, KubernetesVersion: "v1.20.0"},
		{FromCache: c.Dir, Containerd: filepath.Join(dir, "nope")},
	} {
		bad.Output = filepath.Join(dir, "bad.tar")
		if _, err := bundle.Create(context.Background(), bad); err == nil {
			t.Errorf("Create(%+v) succeeded", bad)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.tar")); !os.IsNotExist(err) {
		t.Error("a failed Create left its output")
	}
}

func TestCreateNamesMissingBuilds(t *testing.T) {
	s := set(t)
	c := imagestest.Cache(t, s)
	os.Remove(c.Binary("etcd", s.Versions.Etcd, "etcdctl"))
	_, err := bundle.Create(context.Background(), bundle.CreateOptions{FromCache: c.Dir, Output: filepath.Join(t.TempDir(), "b.tar")})
	if err == nil || !strings.Contains(err.Error(), "etcdctl") || !strings.Contains(err.Error(), "make artifacts") {
		t.Fatalf("missing etcdctl: %v", err)
	}
}

// decompressed writes the tar inside a bundle to a file.
func decompressed(t *testing.T, p string) string {
	t.Helper()
	in, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := zstd.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "plain.tar")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// compressed writes b zstd-compressed, as a bundle is.
func compressed(t *testing.T, b []byte) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "b"+bundle.Extension)
	zw, _ := zstd.NewWriter(nil)
	if err := os.WriteFile(out, zw.EncodeAll(b, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// entryOffsets returns where each entry's header and data start in a tar.
func entryOffsets(t *testing.T, p string) (names []string, headers, data, sizes []int64) {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var prevEnd int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		pos, _ := f.Seek(0, io.SeekCurrent)
		names = append(names, h.Name)
		headers = append(headers, prevEnd)
		data = append(data, pos)
		sizes = append(sizes, h.Size)
		if h.Size == 0 {
			t.Fatalf("entry %s is empty", h.Name)
		}
		io.Copy(io.Discard, tr)
		end, _ := f.Seek(0, io.SeekCurrent)
		prevEnd = (end + 511) / 512 * 512
	}
}

// flipped returns a bundle made of the tar src with one byte changed; zip
// says whether to compress it as Create does.
func flipped(t *testing.T, src string, at int64, zip bool) string {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x01
	if zip {
		return compressed(t, b)
	}
	dst := filepath.Join(t.TempDir(), "corrupt.tar")
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestVerifyNamesCorruptEntry flips one byte in each entry's content (the
// first, middle and last byte) and in each entry's header, in the
// uncompressed archive, then compresses it again (or not: readers accept
// plain tar too): Verify must fail and name the entry.
func TestVerifyNamesCorruptEntry(t *testing.T) {
	p, _ := fromCache(t, bundle.CreateOptions{})
	plain := decompressed(t, p)
	if err := bundle.Verify(plain); err != nil {
		t.Fatalf("the uncompressed bundle: %v", err)
	}
	if err := bundle.Verify(compressed(t, mustRead(t, plain))); err != nil {
		t.Fatalf("the bundle compressed again: %v", err)
	}
	names, headers, data, sizes := entryOffsets(t, plain)
	if names[0] != "manifest.json" || names[1] != "manifest.json.sha256" {
		t.Fatalf("the bundle starts with %q", names[:2])
	}
	for i, n := range names {
		for j, at := range []int64{data[i], data[i] + sizes[i]/2, data[i] + sizes[i] - 1} {
			err := bundle.Verify(flipped(t, plain, at, j != 1))
			wantEntry := n
			if n == "manifest.json.sha256" {
				wantEntry = "manifest.json"
			}
			var ee *bundle.EntryError
			if err == nil || !errors.As(err, &ee) || ee.Entry != wantEntry {
				t.Errorf("byte %d of %s flipped: Verify = %v, want an error naming %s", at, n, err, wantEntry)
			}
		}
		err := bundle.Verify(flipped(t, plain, headers[i]+3, true))
		if err == nil || !strings.Contains(err.Error(), n) && (i == 0 || !strings.Contains(err.Error(), names[i-1])) {
			t.Errorf("header of %s corrupted: Verify = %v", n, err)
		}
	}
	if _, err := bundle.Inspect(flipped(t, plain, data[0]+10, true)); err == nil {
		t.Error("Inspect accepted a corrupt manifest")
	}
}

// TestVerifyCompressedCorruption flips bytes of the compressed file itself:
// the decompressor or a checksum must catch each.
func TestVerifyCompressedCorruption(t *testing.T) {
	p, _ := fromCache(t, bundle.CreateOptions{})
	b := mustRead(t, p)
	for _, at := range []int{10, len(b) / 3, len(b) / 2, len(b) - 5} {
		c := append([]byte(nil), b...)
		c[at] ^= 0x01
		bad := filepath.Join(t.TempDir(), "bad"+bundle.Extension)
		os.WriteFile(bad, c, 0o644)
		if err := bundle.Verify(bad); err == nil {
			t.Errorf("byte %d of %d of the compressed bundle flipped: Verify passed", at, len(b))
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyRejectsTruncatedAndForeign(t *testing.T) {
	p, _ := fromCache(t, bundle.CreateOptions{})
	b := mustRead(t, decompressed(t, p))
	cut := compressed(t, b[:len(b)/2])
	if err := bundle.Verify(cut); err == nil || !strings.Contains(err.Error(), "images.tar") {
		t.Errorf("truncated bundle: %v", err)
	}
	if err := bundle.Verify(compressed(t, b[:len(b)-2048])); err == nil || !strings.Contains(err.Error(), "images.tar") {
		t.Errorf("bundle without its last bytes: %v", err)
	}
	foreign := filepath.Join(t.TempDir(), "foreign.tar")
	f, _ := os.Create(foreign)
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 2})
	tw.Write([]byte("hi"))
	tw.Close()
	f.Close()
	if _, err := bundle.Inspect(foreign); err == nil || !strings.Contains(err.Error(), "kforge bundle") {
		t.Errorf("Inspect of a foreign tar: %v", err)
	}
}

func TestWalkStopsWhenCancelled(t *testing.T) {
	p, _ := fromCache(t, bundle.CreateOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	var seen int
	_, err := bundle.Walk(ctx, p, func(bundle.Entry, io.Reader) error {
		seen++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || seen != 1 {
		t.Fatalf("Walk after cancel: %v, %d entries seen", err, seen)
	}
}
