package phases

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/images/imagestest"
	"kforge.dev/kforge/reporter"
)

// A staged bundle is reused only while its binaries still match the signed
// manifest: a changed kubelet in the staging directory is staged afresh.
// The staging root is the running user's alone.
func TestStagingIsVerifiedAgain(t *testing.T) {
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
	root := filepath.Join(t.TempDir(), "staging")
	stage := func() (string, string) {
		d, _ := fakeNode(t, ciHost)
		var out strings.Builder
		d.Out = reporter.New(&out, nil, true)
		d.StagingDir = root
		d.Cluster.Artifacts.Bundle = file
		d.Cluster.Artifacts.TrustedKeys = []string{key}
		dir, _, err := d.stageBundle(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return dir, out.String()
	}
	dir, _ := stage()
	if fi, err := os.Stat(root); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("staging root %s: %v, %v; want 0700", root, fi.Mode(), err)
	}
	kubelet := filepath.Join(dir, "bin", "kubelet")
	good, err := os.ReadFile(kubelet)
	if err != nil {
		t.Fatal(err)
	}
	if _, out := stage(); strings.Contains(out, "staging it again") {
		t.Errorf("an intact staging directory was staged again:\n%s", out)
	}
	if err := os.WriteFile(kubelet, []byte("#!/bin/sh\necho changed\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	again, out := stage()
	if again != dir || !strings.Contains(out, "no longer matches its manifest") || !strings.Contains(out, "bin/kubelet") {
		t.Errorf("a changed staged kubelet: dir %s (was %s), output:\n%s", again, dir, out)
	}
	if now, _ := os.ReadFile(kubelet); !bytes.Equal(now, good) {
		t.Error("the changed kubelet is still staged")
	}
}
