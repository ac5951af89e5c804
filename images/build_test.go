package images_test

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"kforge.dev/kforge/images"
	"kforge.dev/kforge/images/imagestest"
)

type fileInfo struct {
	mode    int64
	content string
}

// contents flattens an image's layers into path -> file.
func contents(t *testing.T, img v1.Image) map[string]fileInfo {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]fileInfo{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out["/"+strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")] = fileInfo{h.Mode, string(b)}
	}
}

func set(t *testing.T) images.Set {
	s, err := images.For(images.Default())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestImagesFollowUpstreamLayout builds every image of a cluster from fake
// binaries and checks names, platform, entrypoint, PATH and where each
// binary is.
func TestImagesFollowUpstreamLayout(t *testing.T) {
	s := set(t)
	c := imagestest.Cache(t, s)
	v := s.Versions
	base, err := images.FileLayer(context.Background(), []images.File{{Src: c.Binary("kubernetes", v.Kubernetes, "kubectl"), Dst: "/usr/sbin/iptables"}})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		entrypoint []string
		cmd        []string
		files      map[string]string // path in image -> component/binary
		debian     bool
	}
	k8s := func(n string) want {
		return want{entrypoint: []string{"/usr/local/bin/" + n}, files: map[string]string{"/usr/local/bin/" + n: "kubernetes " + v.Kubernetes + " " + n}}
	}
	proxy := k8s("kube-proxy")
	proxy.debian = true
	wants := map[string]want{
		s.APIServer:         k8s("kube-apiserver"),
		s.ControllerManager: k8s("kube-controller-manager"),
		s.Scheduler:         k8s("kube-scheduler"),
		s.Proxy:             proxy,
		s.Etcd: {cmd: []string{"/usr/local/bin/etcd"}, files: map[string]string{
			"/usr/local/bin/etcd": "etcd " + v.Etcd + " etcd", "/usr/local/bin/etcdctl": "etcd " + v.Etcd + " etcdctl", "/usr/local/bin/etcdutl": "etcd " + v.Etcd + " etcdutl",
		}},
		s.CoreDNS:       {entrypoint: []string{"/coredns"}, files: map[string]string{"/coredns": "coredns " + v.CoreDNS + " coredns"}},
		s.Pause:         {entrypoint: []string{"/pause"}, files: map[string]string{"/pause": "pause " + v.Pause + " pause"}},
		s.KubeRouter:    {entrypoint: []string{"/usr/local/bin/kube-router"}, debian: true, files: map[string]string{"/usr/local/bin/kube-router": "kube-router " + v.KubeRouter + " kube-router"}},
		s.MetricsServer: {entrypoint: []string{"/metrics-server"}, files: map[string]string{"/metrics-server": "metrics-server " + v.MetricsServer + " metrics-server"}},
		s.LocalPath: {entrypoint: []string{"local-path-provisioner"}, debian: true, files: map[string]string{
			"/usr/bin/local-path-provisioner": "local-path-provisioner " + v.LocalPathProvisioner + " local-path-provisioner"}},
		s.HAProxy:    {entrypoint: []string{"/usr/sbin/haproxy"}, debian: true},
		s.Keepalived: {entrypoint: []string{"/usr/sbin/keepalived"}, debian: true},
	}
	specs := images.Specs(s, c)
	var refs []string
	for _, spec := range specs {
		refs = append(refs, spec.Ref)
	}
	if !reflect.DeepEqual(refs, s.All()) {
		t.Fatalf("Specs names %v, want %v", refs, s.All())
	}
	for _, spec := range specs {
		w := wants[spec.Ref]
		img, err := images.Image(context.Background(), spec, base)
		if err != nil {
			t.Fatalf("%s: %v", spec.Ref, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != "amd64" {
			t.Errorf("%s: platform %s/%s", spec.Ref, cf.OS, cf.Architecture)
		}
		if !reflect.DeepEqual(cf.Config.Entrypoint, w.entrypoint) || !reflect.DeepEqual(cf.Config.Cmd, w.cmd) {
			t.Errorf("%s: entrypoint %q cmd %q, want %q %q", spec.Ref, cf.Config.Entrypoint, cf.Config.Cmd, w.entrypoint, w.cmd)
		}
		if !reflect.DeepEqual(cf.Config.Env, []string{images.DefaultPath}) {
			t.Errorf("%s: env %q", spec.Ref, cf.Config.Env)
		}
		layers, _ := img.Layers()
		if n := map[bool]int{false: 1, true: 2}[w.debian]; len(layers) != n || len(cf.RootFS.DiffIDs) != n || len(cf.History) != n {
			t.Errorf("%s: %d layers, %d diff IDs, %d history entries; want %d", spec.Ref, len(layers), len(cf.RootFS.DiffIDs), len(cf.History), n)
		}
		files := contents(t, img)
		for p, what := range w.files {
			f, ok := files[p]
			if !ok || !strings.Contains(f.content, "fake "+what+"\n") || f.mode != 0o755 {
				t.Errorf("%s: %s = %+v, want the fake %s, mode 755", spec.Ref, p, f, what)
			}
		}
		if _, ok := files["/usr/sbin/iptables"]; ok != w.debian {
			t.Errorf("%s: has the base layer's /usr/sbin/iptables: %v, want %v", spec.Ref, ok, w.debian)
		}
	}
	if cf := configOf(t, specs, s.Pause, base); cf.Config.User != "65535:65535" {
		t.Errorf("pause runs as %q, want 65535:65535 as upstream", cf.Config.User)
	}
	if cf := configOf(t, specs, s.MetricsServer, base); cf.Config.User != "65534:65534" {
		t.Errorf("metrics-server runs as %q, want 65534:65534 as upstream", cf.Config.User)
	}
}

func configOf(t *testing.T, specs []images.Spec, ref string, base v1.Layer) *v1.ConfigFile {
	for _, s := range specs {
		if s.Ref == ref {
			img, err := images.Image(context.Background(), s, base)
			if err != nil {
				t.Fatal(err)
			}
			cf, _ := img.ConfigFile()
			return cf
		}
	}
	t.Fatalf("no spec %s", ref)
	return nil
}

func TestImageIsReproducible(t *testing.T) {
	s := set(t)
	c := imagestest.Cache(t, s)
	spec := images.Specs(s, c)[0]
	digest := func() v1.Hash {
		img, err := images.Image(context.Background(), spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a := digest()
	if b := digest(); a != b {
		t.Fatalf("two builds of %s: %s and %s", spec.Ref, a, b)
	}
	imagestest.WriteFile(t, spec.Files[0].Src, "changed")
	if b := digest(); a == b {
		t.Fatalf("a changed binary kept the digest %s", a)
	}
}

func TestImageNeedsBaseAndGoodNames(t *testing.T) {
	s := set(t)
	c := imagestest.Cache(t, s)
	for _, spec := range images.Specs(s, c) {
		if spec.Debian {
			if _, err := images.Image(context.Background(), spec, nil); err == nil || !strings.Contains(err.Error(), "base") {
				t.Errorf("%s without a base layer: %v", spec.Ref, err)
			}
		}
	}
	bad := images.Spec{Ref: "Not A Name", Files: []images.File{{Src: c.Binary("pause", s.Versions.Pause, "pause"), Dst: "/pause"}}}
	if _, err := images.Image(context.Background(), bad, nil); err == nil {
		t.Error("an invalid image name was accepted")
	}
	rel := images.Spec{Ref: "kforge.dev/x:v1", Files: []images.File{{Src: c.Binary("pause", s.Versions.Pause, "pause"), Dst: "pause"}}}
	if _, err := images.Image(context.Background(), rel, nil); err == nil {
		t.Error("a relative path in the image was accepted")
	}
	missing := images.Spec{Ref: "kforge.dev/x:v1", Files: []images.File{{Src: filepath.Join(c.Dir, "nope"), Dst: "/x"}}}
	if _, err := images.Image(context.Background(), missing, nil); err == nil {
		t.Error("a missing binary was accepted")
	}
}

// TestArchiveNamesCacheAndBase writes the archive kforge imports into
// containerd and checks its tags, the base layer and the cache.
func TestArchiveNamesCacheAndBase(t *testing.T) {
	s := set(t)
	c := imagestest.Cache(t, s)
	runs := filepath.Join(t.TempDir(), "runs")
	opts := images.BuildOptions{Cache: c, Base: imagestest.Base(t, runs), Name: s.Versions.Kubernetes}
	specs := append(images.Specs(s, c), images.EchoSpec(c))
	path, err := images.Archive(context.Background(), specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, c.Path("images", s.Versions.Kubernetes)+"/") {
		t.Errorf("archive at %s, not under the cache", path)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, d := range m {
		tags = append(tags, d.RepoTags...)
	}
	want := append(s.All(), images.Echo)
	sort.Strings(tags)
	sort.Strings(want)
	if !reflect.DeepEqual(tags, want) {
		t.Fatalf("archive tags %v, want %v", tags, want)
	}
	tag, _ := name.NewTag(s.Proxy)
	img, err := tarball.Image(func() (io.ReadCloser, error) { return os.Open(path) }, &tag)
	if err != nil {
		t.Fatal(err)
	}
	files := contents(t, img)
	if f := files["/usr/sbin/iptables"]; f.content != "fake iptables\n" {
		t.Errorf("kube-proxy lacks the base layer's iptables: %+v", f)
	}
	if f := files["/usr/share/doc/iptables/copyright"]; f.content != "GPL\n" {
		t.Errorf("the base layer lost a copyright file: %+v", f)
	}
	for _, p := range []string{"/dev/junk", "/var/lib/apt/lists/junk", "/usr/share/locale/de/iptables.mo", "/usr/share/doc/iptables/changelog.gz"} {
		if _, ok := files[p]; ok {
			t.Errorf("the base layer has %s", p)
		}
	}
	runsOf := func() int {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "\n")
	}
	if n := runsOf(); n != 1 {
		t.Fatalf("debootstrap ran %d times", n)
	}
	b, _ := os.ReadFile(runs)
	if !strings.Contains(string(b), "--variant=minbase") || !strings.Contains(string(b), "--include=iptables,ipset,conntrack,iproute2,haproxy,keepalived") || !strings.Contains(string(b), "bookworm") {
		t.Errorf("debootstrap arguments: %s", b)
	}

	st, _ := os.Stat(path)
	again, err := images.Archive(context.Background(), specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(again)
	if again != path || !st2.ModTime().Equal(st.ModTime()) || runsOf() != 1 {
		t.Errorf("second run: %s (was %s), rewritten: %v, debootstrap runs %d", again, path, !st2.ModTime().Equal(st.ModTime()), runsOf())
	}

	imagestest.WriteFile(t, c.Binary("coredns", s.Versions.CoreDNS, "coredns"), "new coredns")
	changed, err := images.Archive(context.Background(), specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if changed == path {
		t.Fatal("a changed binary reused the old archive")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the outdated archive %s is still there: %v", path, err)
	}
}

func TestBaseKeyAndFailure(t *testing.T) {
	a := images.DefaultBase()
	b := images.DefaultBase()
	b.Packages = []string{"conntrack", "haproxy", "iproute2", "ipset", "iptables", "keepalived"}
	if a.Key() != b.Key() {
		t.Error("the key depends on the order of packages")
	}
	b.Packages = append(b.Packages, "curl")
	if a.Key() == b.Key() {
		t.Error("the key ignores the package list")
	}

	c := images.Cache{Dir: t.TempDir()}
	fail := filepath.Join(t.TempDir(), "debootstrap")
	imagestest.WriteFile(t, fail, "#!/bin/sh\necho 'E: Failed getting release file' >&2\nexit 1\n")
	a.Debootstrap = []string{fail}
	_, err := a.Rootfs(context.Background(), c, nil)
	if err == nil || !strings.Contains(err.Error(), "Failed getting release file") || !strings.Contains(err.Error(), "debootstrap.log") {
		t.Fatalf("failing debootstrap: %v", err)
	}
	if _, err := os.Stat(c.Path("base", a.Key(), "rootfs.tar")); !os.IsNotExist(err) {
		t.Errorf("a failed build left rootfs.tar: %v", err)
	}
}
