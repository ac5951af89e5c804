package phases

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"kforge.dev/kforge/artifacts"
	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/images/imagestest"
	"kforge.dev/kforge/reporter"
)

// A worker joined through its control plane's artifact server fetches only
// a worker's binaries and images, each checked against the signed
// manifest; the control plane offers every file it asks for
// (servedFiles); an image archive that is not the manifest's, or a
// manifest signed by a key the cluster does not trust, installs nothing.
func TestWorkerFetchesItsPartFromTheControlPlane(t *testing.T) {
	set, err := images.For(images.Default())
	if err != nil {
		t.Fatal(err)
	}
	c := imagestest.Cache(t, set)
	file, err := bundle.Create(context.Background(), bundle.CreateOptions{FromCache: c.Dir, Base: imagestest.Base(t, filepath.Join(t.TempDir(), "runs"))})
	if err != nil {
		t.Fatal(err)
	}
	key := signBundle(t, file)
	// The control plane's side: the bundle staged as init stages it.
	cp, _ := fakeNode(t, ciHost)
	cp.Node.Role = config.RoleControlPlane
	cp.StagingDir = filepath.Join(t.TempDir(), "cp")
	cp.Cluster.Artifacts.Bundle = file
	cp.Cluster.Artifacts.TrustedKeys = []string{key}
	staged, m, err := cp.stageBundle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	raw, sig, err := bundle.RawManifest(file)
	if err != nil || sig == nil {
		t.Fatalf("RawManifest: %v (signature %d bytes)", err, len(sig))
	}
	files, err := servedFiles(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Serve them from where the test has them.
	tmp := t.TempDir()
	at := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	local := map[string]artifacts.File{}
	for p, f := range files {
		switch {
		case p == artifacts.ManifestPath:
			f.Path = at("manifest.json", raw)
		case p == artifacts.SignaturePath:
			f.Path = at("manifest.json.sig", sig)
		case p == artifacts.KforgePath:
			f.Path = at("kforge", []byte("kforge"))
		case strings.HasPrefix(p, "/v1/images/"):
			f.Path = filepath.Join(staged, splitDir, filepath.Base(f.Path))
		default:
			f.Path = filepath.Join(staged, strings.TrimPrefix(p, "/v1/bundle/"))
		}
		local[p] = f
	}
	const token = "abcdef.0123456789abcdef"
	worker := func(t *testing.T, served map[string]artifacts.File, trusted string) (string, error) {
		t.Helper()
		s, err := artifacts.NewServer(token, served, nil)
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewTLSServer(s)
		t.Cleanup(ts.Close)
		d, _ := fakeNode(t, ciHost)
		d.Node.Role = config.RoleWorker
		d.StagingDir = filepath.Join(t.TempDir(), "worker")
		d.ArtifactsFrom = ts.URL
		d.Cluster.Artifacts.TrustedKeys = []string{trusted}
		tok, _ := discovery.ParseToken(token)
		d.Discovery = &discovery.Options{Token: tok}
		d.Results.Discovered = &discovery.Result{CACert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})}
		var out strings.Builder
		d.Out = reporter.New(&out, &out, true)
		dir, _, err := d.bundleSource().stage(context.Background())
		return dir, err
	}

	dir, err := worker(t, local, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Entries {
		if !strings.HasPrefix(e.Path, bundle.BinDir) {
			continue
		}
		_, err := os.Stat(filepath.Join(dir, e.Path))
		if e.ControlPlaneOnly != os.IsNotExist(err) {
			t.Errorf("%s (control plane only: %v) fetched: %v", e.Path, e.ControlPlaneOnly, err == nil)
		}
	}
	// One control plane: its workers reach the API server without the
	// node-local load balancer, and do not fetch its image.
	for _, img := range m.Images {
		_, err := os.Stat(filepath.Join(dir, splitDir, images.FileName(img.Name)))
		want := !img.ControlPlaneOnly && img.Name != images.HAProxyImage
		if want == os.IsNotExist(err) {
			t.Errorf("image %s (control plane only: %v) fetched: %v", img.Name, img.ControlPlaneOnly, err == nil)
		}
	}

	// One worker image served with another image's archive.
	var workerImages []string
	for _, img := range m.NodeImages(false) {
		workerImages = append(workerImages, img.Name)
	}
	slices.Sort(workerImages)
	swapped := map[string]artifacts.File{}
	for p, f := range local {
		swapped[p] = f
	}
	a, b := artifacts.ImagePath(images.FileName(workerImages[0])), artifacts.ImagePath(images.FileName(workerImages[1]))
	swapped[a] = local[b]
	if _, err := worker(t, swapped, key); err == nil || !strings.Contains(err.Error(), "nothing was installed") || !strings.Contains(err.Error(), workerImages[0]) {
		t.Fatalf("an image archive that is not the manifest's: %v", err)
	}

	// A manifest signed by a key the cluster does not trust.
	other := signBundle(t, file)
	if _, err := worker(t, local, other); err == nil || !strings.Contains(err.Error(), "not a trusted key") {
		t.Fatalf("a manifest signed by another key: %v", err)
	}
}
