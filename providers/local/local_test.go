package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kforge.dev/kforge/host"
)

func TestRunOutputAndEnv(t *testing.T) {
	h := New()
	res, err := h.Run(context.Background(), host.Cmd{
		Argv: []string{"sh", "-c", `echo "$GREETING"; cat`}, Env: []string{"GREETING=hello"},
		Stdin: strings.NewReader("from stdin"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "hello\nfrom stdin" {
		t.Fatalf("stdout = %q", got)
	}
}

func TestRunFailureNamesCommandExitAndTail(t *testing.T) {
	_, err := New().Run(context.Background(), host.Cmd{Argv: []string{"sh", "-c", "echo first; echo boom >&2; exit 3"}})
	var ce *host.CommandError
	if !errors.As(err, &ce) || ce.Result.ExitCode != 3 {
		t.Fatalf("want CommandError exit 3, got %v", err)
	}
	msg := err.Error()
	if ce.Host != "localhost" || strings.Contains(msg, "localhost") {
		t.Errorf("the error keeps the host (%q) for its reporter and does not name it itself: %q", ce.Host, msg)
	}
	for _, want := range []string{"exited 3", "boom", "`sh -c 'echo first; echo boom >&2; exit 3'`"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestRunMissingBinary(t *testing.T) {
	_, err := New().Run(context.Background(), host.Cmd{Argv: []string{"/nonexistent/kforge-x"}})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/kforge-x") {
		t.Fatalf("got %v", err)
	}
}

func TestCancelKillsProcessGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The child sleep would keep the pipes open if only sh were killed.
	_, err := New().Run(ctx, host.Cmd{Argv: []string{"sh", "-c", "sleep 30 & sleep 30"}})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline error, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}
}

func TestRootedWriteReadStatRemove(t *testing.T) {
	dir := t.TempDir()
	h := Rooted(dir)
	ctx := context.Background()
	if err := h.WriteFile(ctx, "/etc/kubernetes/pki/ca.key", []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "etc/kubernetes/pki/ca.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file not at rooted path with 0600: %v %v", st, err)
	}
	if b, err := h.ReadFile(ctx, "/etc/kubernetes/pki/ca.key"); err != nil || string(b) != "k" {
		t.Fatalf("ReadFile = %q %v", b, err)
	}
	if _, err := h.Stat(ctx, "/etc/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat missing = %v", err)
	}
	if err := h.Remove(ctx, "/etc/kubernetes"); err != nil {
		t.Fatal(err)
	}
	if err := h.Remove(ctx, "/etc/kubernetes"); err != nil {
		t.Fatalf("removing a missing path: %v", err)
	}
	// ".." cannot escape the root.
	if got := h.Path("/../../x"); got != filepath.Join(dir, "x") {
		t.Fatalf("Path escaped root: %s", got)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "etc"))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".kforge-") {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestUploadSkipsIdentical(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.WriteFile(src, []byte("binary"), 0o644)
	h := Rooted(filepath.Join(dir, "root"))
	ctx := context.Background()
	if err := h.Upload(ctx, src, "/usr/local/bin/x", 0o755); err != nil {
		t.Fatal(err)
	}
	dst := h.Path("/usr/local/bin/x")
	old := time.Now().Add(-time.Hour)
	os.Chtimes(dst, old, old)
	if err := h.Upload(ctx, src, "/usr/local/bin/x", 0o755); err != nil {
		t.Fatal(err)
	}
	if !modTime(dst).Equal(old) {
		t.Fatal("identical upload rewrote the file")
	}
	os.WriteFile(src, []byte("binary v2"), 0o644)
	if err := h.Upload(ctx, src, "/usr/local/bin/x", 0o755); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "binary v2" {
		t.Fatalf("changed upload not written: %q", b)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v", st.Mode())
	}
	// Larger than one compared chunk: identical is skipped, one byte
	// changed near the end (same size) is written.
	big := bytes.Repeat([]byte("kforge "), 400_000)
	os.WriteFile(src, big, 0o644)
	if err := h.Upload(ctx, src, "/usr/local/bin/x", 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(dst, old, old)
	if err := h.Upload(ctx, src, "/usr/local/bin/x", 0o755); err != nil {
		t.Fatal(err)
	}
	if !modTime(dst).Equal(old) {
		t.Fatal("identical large upload rewrote the file")
	}
	big[len(big)-3] = 'X'
	os.WriteFile(src, big, 0o644)
	if err := h.Upload(ctx, src, "/usr/local/bin/x", 0o755); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); !bytes.Equal(b, big) {
		t.Fatal("a same-size change near the end was not written")
	}
}

// A stdin that stays open (init -f keeps a worker's join's input open
// while it runs) does not keep Run from returning.
func TestRunReturnsWithStdinStillOpen(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	done := make(chan error, 1)
	go func() {
		_, err := New().Run(context.Background(), host.Cmd{Argv: []string{"true"}, Stdin: r})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run waits for a stdin that never ends")
	}
}
