package bundle_test

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"kforge.dev/kforge/bundle"
)

func newSigner(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

// rewrite copies a bundle as a plain tar, letting edit change each entry's
// content and then the manifest (whose sums it recomputes for changed
// entries), and add entries: a forger who can recompute sha256 sums but
// holds no trusted key.
func rewrite(t *testing.T, src string, edit func(name string, data []byte) []byte, extra map[string][]byte) string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(mustRead(t, decompressed(t, src))))
	type entry struct {
		hdr  *tar.Header
		data []byte
	}
	var entries []entry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		entries = append(entries, entry{hdr, data})
	}
	var m map[string]any
	if err := json.Unmarshal(entries[0].data, &m); err != nil {
		t.Fatal(err)
	}
	list := m["entries"].([]any)
	for i := 2; i < len(entries); i++ {
		e := &entries[i]
		e.data = edit(e.hdr.Name, e.data)
		e.hdr.Size = int64(len(e.data))
		sum := sha256.Sum256(e.data)
		for _, me := range list {
			if me := me.(map[string]any); me["path"] == e.hdr.Name {
				me["sha256"], me["size"] = hex.EncodeToString(sum[:]), len(e.data)
			}
		}
	}
	for name, data := range extra {
		sum := sha256.Sum256(data)
		list = append(list, map[string]any{"path": name, "size": len(data), "mode": 0o755, "sha256": hex.EncodeToString(sum[:])})
		entries = append(entries, entry{&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}, data})
	}
	m["entries"] = list
	raw, _ := json.MarshalIndent(m, "", "  ")
	raw = append(raw, '\n')
	sum := sha256.Sum256(raw)
	entries[0].data, entries[0].hdr.Size = raw, int64(len(raw))
	line := []byte(hex.EncodeToString(sum[:]) + "  " + bundle.ManifestName + "\n")
	entries[1].data, entries[1].hdr.Size = line, int64(len(line))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(e.hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	out := filepath.Join(t.TempDir(), "forged.tar")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSignedBundles(t *testing.T) {
	p, _ := fromCache(t, bundle.CreateOptions{})
	signer, pub := newSigner(t)
	_, otherPub := newSigner(t)
	trusted, err := bundle.ParseTrustedKeys([]string{pub})
	if err != nil {
		t.Fatal(err)
	}

	// Unsigned: refused, naming the bundle and what to do.
	_, err = bundle.VerifySignature(p, trusted)
	if !errors.Is(err, bundle.ErrUnsigned) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "--unsafe-allow-unsigned-bundle") {
		t.Errorf("unsigned: %v", err)
	}

	if err := bundle.Sign(p, signer); err != nil {
		t.Fatal(err)
	}
	fp := ssh.FingerprintSHA256(signer.PublicKey())
	if got, err := bundle.VerifySignature(p, trusted); err != nil || got != fp {
		t.Fatalf("signed: %q, %v; want %s", got, err, fp)
	}

	// The same signature under a key the run does not trust.
	others, _ := bundle.ParseTrustedKeys([]string{otherPub})
	if _, err := bundle.VerifySignature(p, others); err == nil || !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), "not a trusted key") {
		t.Errorf("untrusted signer: %v", err)
	}
	if _, err := bundle.VerifySignature(p, nil); err == nil || !strings.Contains(err.Error(), "no key is trusted") {
		t.Errorf("no trusted keys: %v", err)
	}

	// A changed kubelet with the manifest's sums recomputed, under the
	// original signature: the sums check, the signature does not.
	forged := rewrite(t, p, func(name string, data []byte) []byte {
		if name == bundle.BinDir+"kubelet" {
			return append(data, "evil"...)
		}
		return data
	}, nil)
	if err := bundle.Verify(forged); err != nil {
		t.Fatalf("the forged bundle's sums should check: %v", err)
	}
	sig := mustRead(t, bundle.SignaturePath(p))
	if err := os.WriteFile(bundle.SignaturePath(forged), sig, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.VerifySignature(forged, trusted); err == nil || !strings.Contains(err.Error(), forged) || !strings.Contains(err.Error(), "does not match its manifest") {
		t.Errorf("tampered bundle: %v", err)
	}

	// Keys come as authorized_keys lines or files of them.
	f := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(f, []byte("# ops\n"+otherPub+"\n\n"+pub+"\n"), 0o644)
	if keys, err := bundle.ParseTrustedKeys([]string{f}); err != nil || len(keys) != 2 {
		t.Errorf("keys file: %d keys, %v", len(keys), err)
	}
	os.WriteFile(f, []byte(pub+"\nnot a key\n"), 0o644)
	if _, err := bundle.ParseTrustedKeys([]string{f}); err == nil || !strings.Contains(err.Error(), f+":2") {
		t.Errorf("bad keys file: %v, want the file and line", err)
	}
}

// Only kforge's own binaries and the images are installable: an extra
// bin/sudo, or an entry that climbs out, is refused however good its sums.
func TestManifestAllowlist(t *testing.T) {
	p, _ := fromCache(t, bundle.CreateOptions{})
	same := func(_ string, d []byte) []byte { return d }
	for name, want := range map[string]string{
		"bin/sudo":   `entry "bin/sudo": not a file kforge installs`,
		"..":         `entry "..": not a clean relative path`,
		"bin/../x":   "not a clean relative path",
		"etc/passwd": `entry "etc/passwd": not a file kforge installs`,
	} {
		forged := rewrite(t, p, same, map[string][]byte{name: []byte("#!/bin/sh\n")})
		if _, err := bundle.Inspect(forged); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}
