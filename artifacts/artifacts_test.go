package artifacts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const token = "abcdef.0123456789abcdef"

// serve starts a TLS server of files and returns a client that trusts it.
func serve(t *testing.T, files map[string]File, tok string) (*Client, *Server, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	s, err := NewServer(token, files, &log)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(s)
	t.Cleanup(ts.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	c, err := NewClient(ts.URL, ca, tok)
	if err != nil {
		t.Fatal(err)
	}
	c.Backoff = 0
	return c, s, &log
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestFetchChecksWhatArrives(t *testing.T) {
	dir := t.TempDir()
	kubelet := writeFile(t, dir, "kubelet", "the kubelet")
	c, s, log := serve(t, map[string]File{EntryPath("bin/kubelet"): {Path: kubelet, Size: 11}}, token)
	ctx := context.Background()
	out := t.TempDir()

	dst := filepath.Join(out, "bin", "kubelet")
	n, err := c.Fetch(ctx, EntryPath("bin/kubelet"), dst, 0o755, 11, sum("the kubelet"))
	if err != nil || n != 11 {
		t.Fatalf("Fetch = %d, %v; want 11 bytes", n, err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "the kubelet" {
		t.Fatalf("fetched %q", b)
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v, want 0755", fi.Mode().Perm())
	}

	// Content that differs from the signed manifest is not kept, and is
	// not asked for again.
	bad := filepath.Join(out, "bad")
	_, err = c.Fetch(ctx, EntryPath("bin/kubelet"), bad, 0o755, 11, sum("another kubelet"))
	if err == nil || !strings.Contains(err.Error(), "the signed manifest says "+sum("another kubelet")) {
		t.Fatalf("Fetch with a wrong sha256: %v", err)
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file that failed its check was kept: %v", err)
	}
	if _, err := os.Stat(bad + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a partial file was left: %v", err)
	}
	if _, err := c.Fetch(ctx, EntryPath("bin/kubelet"), bad, 0o755, 12, ""); err == nil || !strings.Contains(err.Error(), "11 bytes, the signed manifest says 12") {
		t.Fatalf("Fetch with a wrong size: %v", err)
	}
	if got := strings.Count(log.String(), "served /v1/bundle/bin/kubelet"); got != 3 {
		t.Fatalf("served the file %d times, want 3 (no retry of a failed check):\n%s", got, log)
	}
	if sent := s.Sent(); len(sent) != 1 {
		t.Fatalf("Sent() = %v, want one client", sent)
	} else {
		for _, b := range sent {
			if b != 33 {
				t.Fatalf("sent %d bytes, want 33", b)
			}
		}
	}
}

func TestServerRefusesWithoutTheToken(t *testing.T) {
	dir := t.TempDir()
	k := writeFile(t, dir, "kforge", "kforge")
	ctx := context.Background()
	for _, tok := range []string{"", "abcdef.0123456789abcdeX"} {
		c, _, log := serve(t, map[string]File{KforgePath: {Path: k}}, tok)
		_, err := c.Get(ctx, KforgePath, 100)
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("token %q: Get = %v, want 401", tok, err)
		}
		if !strings.Contains(log.String(), "refused /v1/kforge") {
			t.Fatalf("token %q: refusal not logged: %s", tok, log)
		}
	}
	c, _, _ := serve(t, map[string]File{KforgePath: {Path: k}}, token)
	if b, err := c.Get(ctx, KforgePath, 100); err != nil || string(b) != "kforge" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	if _, err := c.Get(ctx, KforgePath, 3); err == nil || !strings.Contains(err.Error(), "more than 3 bytes") {
		t.Fatalf("Get over its limit: %v", err)
	}
	// Only the files given are served: no path leads elsewhere.
	for _, p := range []string{"/v1/bundle/../../etc/passwd", "/v1/images/x.tar", "/etc/passwd", EntryPath("bin/kubelet")} {
		if _, err := c.Get(ctx, p, 100); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("Get %s = %v, want 404", p, err)
		}
	}
}

func TestNewServerChecksItsFiles(t *testing.T) {
	dir := t.TempDir()
	k := writeFile(t, dir, "kubelet", "12345")
	_, err := NewServer(token, map[string]File{
		EntryPath("bin/kubelet"): {Path: k, Size: 6},
		ImagePath("pause.tar"):   {Path: filepath.Join(dir, "missing.tar")},
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "2 file(s) cannot be served") ||
		!strings.Contains(err.Error(), "has 5 bytes, the manifest says 6") || !strings.Contains(err.Error(), "missing.tar") {
		t.Fatalf("NewServer = %v", err)
	}
	if _, err := NewServer("short", nil, nil); err == nil {
		t.Fatal("NewServer accepted a short token")
	}
}
