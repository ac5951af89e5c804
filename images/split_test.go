package images

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestSplitKeepsEachImageAndItsName(t *testing.T) {
	dir := t.TempDir()
	refs := map[name.Reference]v1.Image{}
	want := map[string]v1.Hash{}
	for _, n := range []string{"registry.k8s.io/pause:3.10.1", "kforge.dev/echo:v1"} {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(n)
		if err != nil {
			t.Fatal(err)
		}
		refs[ref] = img
		want[n], _ = img.Digest()
	}
	all := filepath.Join(dir, "all.tar")
	if err := WriteArchive(context.Background(), all, refs); err != nil {
		t.Fatal(err)
	}
	got, err := Split(context.Background(), all, filepath.Join(dir, "split"), []string{"registry.k8s.io/pause:3.10.1", "kforge.dev/echo:v1"})
	if err != nil {
		t.Fatal(err)
	}
	for n, p := range got {
		tag, err := name.NewTag(n)
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(p, &tag)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if d, _ := img.Digest(); d != want[n] {
			t.Errorf("%s: digest %s, want %s", n, d, want[n])
		}
	}
	if _, err := Split(context.Background(), all, dir, []string{"registry.k8s.io/nope:1"}); err == nil {
		t.Error("an image missing from the archive was not an error")
	}
}
