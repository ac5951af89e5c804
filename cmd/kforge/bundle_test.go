package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/images/imagestest"
)

func TestImagesListAndBundleCommands(t *testing.T) {
	out, err := kforge(t, "images", "list")
	if err != nil {
		t.Fatal(err)
	}
	set, _ := images.For(images.Default())
	if strings.Join(set.All(), "\n")+"\n" != out {
		t.Fatalf("images list:\n%s", out)
	}

	c := imagestest.Cache(t, set)
	// The default base's root file system, made by a fake debootstrap, so
	// the command finds it cached.
	if _, err := imagestest.Base(t, filepath.Join(t.TempDir(), "runs")).Rootfs(context.Background(), c, nil); err != nil {
		t.Fatal(err)
	}
	out, err = kforge(t, "bundle", "create", "--from-cache", c.Dir)
	if err != nil {
		t.Fatalf("bundle create: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	path := lines[len(lines)-1]
	if !strings.HasPrefix(path, c.Dir) || !strings.HasSuffix(path, bundle.Extension) {
		t.Fatalf("bundle create did not end with the bundle's path:\n%s", out)
	}

	out, err = kforge(t, "bundle", "inspect", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append(set.All(), "bin/kubelet", "bin/kubectl", "bin/cni/bridge", set.Versions.Etcd) {
		if !strings.Contains(out, want) {
			t.Errorf("bundle inspect lacks %s:\n%s", want, out)
		}
	}

	if out, err := kforge(t, "bundle", "verify", path); err != nil || !strings.Contains(out, "[ok] verify") {
		t.Fatalf("bundle verify: %v\n%s", err, out)
	}
	// A bundle whose kubectl has one byte changed, compressed again.
	f, _ := os.Open(path)
	zr, _ := zstd.NewReader(f)
	b, err := io.ReadAll(zr)
	zr.Close()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "fake kubernetes "+set.Versions.Kubernetes+" kubectl")
	b[i] ^= 1
	zw, _ := zstd.NewWriter(nil)
	bad := filepath.Join(t.TempDir(), "bad"+bundle.Extension)
	os.WriteFile(bad, zw.EncodeAll(b, nil), 0o644)
	if out, err := kforge(t, "bundle", "verify", bad); err == nil || !strings.Contains(err.Error(), "bin/kubectl") {
		t.Fatalf("verify of a bundle with a flipped byte in kubectl: %v\n%s", err, out)
	}
}
