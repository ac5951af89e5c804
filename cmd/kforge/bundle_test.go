package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"

	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/klauspost/compress/zstd"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/cluster"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/images/imagestest"
)

func TestImagesListAndBundleCommands(t *testing.T) {
	// Only the keys this test passes are trusted (make exports one).
	t.Setenv(cluster.TrustedKeysEnv, "")
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
	key, pub := signingKeyFiles(t)
	out, err = kforge(t, "bundle", "create", "--from-cache", c.Dir, "--sign-key", key)
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

	if _, err := kforge(t, "bundle", "verify", path); err == nil || !strings.Contains(err.Error(), "no key is trusted") {
		t.Fatalf("bundle verify with no trusted key: %v", err)
	}
	if out, err := kforge(t, "bundle", "verify", path, "--trusted-key", pub); err != nil || !strings.Contains(out, "[ok] verify") || !strings.Contains(out, "signed by SHA256:") {
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
	if out, err := kforge(t, "bundle", "verify", bad, "--trusted-key", pub); err == nil || !strings.Contains(err.Error(), "is unsigned") {
		t.Fatalf("verify of an unsigned bundle: %v\n%s", err, out)
	}
	if out, err := kforge(t, "bundle", "verify", bad, "--unsafe-allow-unsigned-bundle"); err == nil || !strings.Contains(err.Error(), "bin/kubectl") {
		t.Fatalf("verify of a bundle with a flipped byte in kubectl: %v\n%s", err, out)
	}
	// Signed after the damage: the signature holds, the content does not.
	if out, err := kforge(t, "bundle", "sign", bad, "--key", key); err != nil {
		t.Fatalf("bundle sign: %v\n%s", err, out)
	}
	if out, err := kforge(t, "bundle", "verify", bad, "--trusted-key", pub); err == nil || !strings.Contains(err.Error(), "bin/kubectl") {
		t.Fatalf("verify of a signed bundle with a flipped byte in kubectl: %v\n%s", err, out)
	}
}

// signingKeyFiles writes a new ed25519 key as OpenSSH files and returns the
// private key's path and the public key's.
func signingKeyFiles(t *testing.T) (string, string) {
	t.Helper()
	pubKey, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pubKey)
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "id_ed25519.pub")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		t.Fatal(err)
	}
	return key, pub
}
