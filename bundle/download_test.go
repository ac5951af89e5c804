package bundle_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/images"
)

// releaseServer serves what dl.k8s.io and the CNI plugins' GitHub release
// serve, under /release and /cni; sums overrides published sha256 files.
type releaseServer struct {
	files map[string][]byte
	sums  map[string]string
	hang  map[string]bool
}

func newReleaseServer(t *testing.T, s images.Set) *releaseServer {
	r := &releaseServer{files: map[string][]byte{}, sums: map[string]string{}, hang: map[string]bool{}}
	v := s.Versions
	for _, b := range []string{"kubelet", "kubectl", "kubeadm"} {
		r.files["/release/"+v.Kubernetes+"/bin/linux/amd64/"+b] = []byte("official " + b + " " + v.Kubernetes)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, p := range []string{"bridge", "dhcp", "host-local", "loopback", "portmap", "README.md"} {
		body := []byte("official cni " + p)
		tw.WriteHeader(&tar.Header{Name: "./" + p, Mode: 0o755, Size: int64(len(body))})
		tw.Write(body)
	}
	tw.Close()
	zw.Close()
	name := "cni-plugins-linux-amd64-" + v.CNIPlugins + ".tgz"
	r.files["/cni/"+v.CNIPlugins+"/"+name] = buf.Bytes()
	return r
}

func (r *releaseServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p := req.URL.Path
	if r.hang[p] {
		<-req.Context().Done()
		return
	}
	if base, ok := strings.CutSuffix(p, ".sha256"); ok {
		body, ok := r.files[base]
		if !ok {
			http.NotFound(w, req)
			return
		}
		sum := sha256.Sum256(body)
		line := hex.EncodeToString(sum[:])
		if strings.HasSuffix(base, ".tgz") {
			line += "  " + filepath.Base(base) // as GitHub release sums are written
		}
		if s, ok := r.sums[base]; ok {
			line = s
		}
		io.WriteString(w, line+"\n")
		return
	}
	body, ok := r.files[p]
	if !ok {
		http.NotFound(w, req)
		return
	}
	w.Write(body)
}

// startRegistry runs go-containerregistry's in-process registry and pushes
// a small random image for each image of s, under the registry's host and
// the upstream repository path. It returns the host and the pushed images.
func startRegistry(t *testing.T, s images.Set) (string, map[string]v1.Image) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	pushed := map[string]v1.Image{}
	for _, r := range s.All() {
		up, err := name.ParseReference(r)
		if err != nil {
			t.Fatal(err)
		}
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := name.ParseReference(host + "/" + up.Context().RepositoryStr() + ":" + up.Identifier())
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(dst, img); err != nil {
			t.Fatal(err)
		}
		pushed[r] = img
	}
	return host, pushed
}

type countingBar struct {
	mu *sync.Mutex
	n  *int64
}

func (c countingBar) Write(p []byte) (int, error) {
	c.mu.Lock()
	*c.n += int64(len(p))
	c.mu.Unlock()
	return len(p), nil
}
func (c countingBar) Close() error { return nil }

func TestCreateFromDownloads(t *testing.T) {
	s := set(t)
	rel := newReleaseServer(t, s)
	web := httptest.NewServer(rel)
	defer web.Close()
	host, pushed := startRegistry(t, s)
	out := filepath.Join(t.TempDir(), "b.tar")
	var mu sync.Mutex
	var transferred int64
	p, err := bundle.Create(context.Background(), bundle.CreateOptions{
		Output: out,
		Download: &bundle.DownloadOptions{
			BaseURL: web.URL + "/release", CNIBaseURL: web.URL + "/cni/", Registry: host,
			FileTimeout: 20 * time.Second, PullTimeout: time.Minute,
		},
		Progress: func(string, int64) io.WriteCloser { return countingBar{&mu, &transferred} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.Verify(p); err != nil {
		t.Fatal(err)
	}
	m, err := bundle.Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Source, web.URL) || !strings.Contains(m.Source, host) {
		t.Errorf("source %q does not say where things came from", m.Source)
	}
	ids := map[string]string{}
	for _, img := range m.Images {
		ids[img.Name] = img.ID
	}
	for ref, img := range pushed {
		want, _ := img.ConfigName()
		if ids[ref] != want.String() {
			t.Errorf("image %s: id %q, want the pushed image's %s", ref, ids[ref], want)
		}
	}
	if len(ids) != len(pushed) {
		t.Errorf("images %v, want exactly %d", ids, len(pushed))
	}
	got := map[string]string{}
	bundle.Walk(context.Background(), p, func(e bundle.Entry, r io.Reader) error {
		b, _ := io.ReadAll(r)
		got[e.Path] = string(b)
		return nil
	})
	for path, want := range map[string]string{
		"bin/kubelet": "official kubelet " + s.Versions.Kubernetes, "bin/kubeadm": "official kubeadm " + s.Versions.Kubernetes,
		"bin/cni/bridge": "official cni bridge", "bin/cni/portmap": "official cni portmap",
	} {
		if got[path] != want {
			t.Errorf("%s = %q, want %q", path, got[path], want)
		}
	}
	if _, ok := got["bin/cni/dhcp"]; ok {
		t.Error("a plugin the cluster does not use is in the bundle")
	}
	if transferred == 0 {
		t.Error("no progress was reported")
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".kforge-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

// TestDownloadChecksumMismatch: a binary whose published sha256 differs
// fails the bundle, naming the URL; nothing is written.
func TestDownloadChecksumMismatch(t *testing.T) {
	s := set(t)
	for _, bad := range []string{
		"/release/" + s.Versions.Kubernetes + "/bin/linux/amd64/kubectl",
		"/cni/" + s.Versions.CNIPlugins + "/cni-plugins-linux-amd64-" + s.Versions.CNIPlugins + ".tgz",
	} {
		rel := newReleaseServer(t, s)
		rel.sums[bad] = strings.Repeat("ab", 32)
		web := httptest.NewServer(rel)
		out := filepath.Join(t.TempDir(), "b.tar")
		_, err := bundle.Create(context.Background(), bundle.CreateOptions{
			Output:   out,
			Download: &bundle.DownloadOptions{BaseURL: web.URL + "/release", CNIBaseURL: web.URL + "/cni", Registry: "127.0.0.1:1"},
		})
		web.Close()
		t.Logf("wrong sha256: %v", err)
		if err == nil || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s with a wrong sha256: %v", bad, err)
		}
		if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
			t.Errorf("files left after a failed download: %v", entries)
		}
	}
}

func TestDownloadFailuresAreBounded(t *testing.T) {
	s := set(t)
	kubelet := "/release/" + s.Versions.Kubernetes + "/bin/linux/amd64/kubelet"
	rel := newReleaseServer(t, s)
	rel.hang[kubelet] = true
	web := httptest.NewServer(rel)
	defer web.Close()
	start := time.Now()
	_, err := bundle.Create(context.Background(), bundle.CreateOptions{
		Output:   filepath.Join(t.TempDir(), "b.tar"),
		Download: &bundle.DownloadOptions{BaseURL: web.URL + "/release", CNIBaseURL: web.URL + "/cni", FileTimeout: 300 * time.Millisecond},
	})
	t.Logf("hanging server: %v", err)
	if err == nil || !strings.Contains(err.Error(), "kubelet") || time.Since(start) > 10*time.Second {
		t.Errorf("a server that never answers: %v after %s", err, time.Since(start))
	}

	rel = newReleaseServer(t, s)
	delete(rel.files, kubelet)
	web2 := httptest.NewServer(rel)
	defer web2.Close()
	_, err = bundle.Create(context.Background(), bundle.CreateOptions{
		Output:   filepath.Join(t.TempDir(), "b.tar"),
		Download: &bundle.DownloadOptions{BaseURL: web2.URL + "/release", CNIBaseURL: web2.URL + "/cni"},
	})
	t.Logf("missing binary: %v", err)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a missing binary: %v", err)
	}

	// A registry without the images.
	empty := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer empty.Close()
	rel = newReleaseServer(t, s)
	web3 := httptest.NewServer(rel)
	defer web3.Close()
	_, err = bundle.Create(context.Background(), bundle.CreateOptions{
		Output: filepath.Join(t.TempDir(), "b.tar"),
		Download: &bundle.DownloadOptions{BaseURL: web3.URL + "/release", CNIBaseURL: web3.URL + "/cni",
			Registry: strings.TrimPrefix(empty.URL, "http://"), PullTimeout: 20 * time.Second},
	})
	t.Logf("empty registry: %v", err)
	if err == nil || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Errorf("pulling from an empty registry: %v", err)
	}
}
