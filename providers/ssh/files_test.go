package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tempNames lists the temporary files WriteFile and Upload create in dir.
func tempNames(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".kforge-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriteFileAtomic(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	h := dialT(t, s.config(e, "root"))
	ctx := context.Background()
	dir := t.TempDir()

	p := filepath.Join(dir, "a", "b", "c", "file")
	if err := h.WriteFile(ctx, p, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := localStat(t, filepath.Join(dir, "a", "b", "c")); !fi.IsDir() {
		t.Fatalf("parent is %v, want a directory", fi.Mode())
	}
	fi, st := localStat(t, p)
	if fi.Mode() != 0o600 {
		t.Errorf("mode %v, want -rw-------", fi.Mode())
	}
	oldInode := st.Ino

	// A second name for the old file: a rename leaves it alone, rewriting
	// the file in place would change it.
	link := filepath.Join(dir, "old")
	if err := os.Link(p, link); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteFile(ctx, p, []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "two\n" {
		t.Errorf("content %q, want %q", got, "two\n")
	}
	fi, st = localStat(t, p)
	if fi.Mode() != 0o644 {
		t.Errorf("mode %v after rewrite, want -rw-r--r--", fi.Mode())
	}
	if st.Ino == oldInode {
		t.Errorf("inode %d unchanged: the file was rewritten in place, not renamed over", st.Ino)
	}
	if got, _ := os.ReadFile(link); string(got) != "one\n" {
		t.Errorf("the old file became %q: the file was rewritten in place", got)
	}
	if left := tempNames(t, filepath.Dir(p)); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	special := filepath.Join(dir, "setuid")
	if err := h.WriteFile(ctx, special, nil, fs.ModeSetuid|0o750); err != nil {
		t.Fatal(err)
	}
	if fi, _ := localStat(t, special); fi.Mode() != fs.ModeSetuid|0o750 || fi.Size() != 0 {
		t.Errorf("nil data with setuid: mode %v size %d, want %v, 0", fi.Mode(), fi.Size(), fs.ModeSetuid|0o750)
	}
	if fi, err := h.Stat(ctx, special); err != nil || fi.Mode() != fs.ModeSetuid|0o750 {
		t.Errorf("Stat: %v, %v", fi, err)
	}
}

// A file cannot replace a directory: WriteFile and Upload fail and leave
// the directory as it was.
func TestWriteOverDirectoryFails(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	ctx := context.Background()
	local := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(local, []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"root", userNoPw} {
		t.Run(user, func(t *testing.T) {
			h := dialT(t, s.config(e, user))
			target := filepath.Join(t.TempDir(), "target")
			if err := os.Mkdir(target, 0o755); err != nil {
				t.Fatal(err)
			}
			check := func(op string, err error) {
				t.Helper()
				if err == nil {
					t.Errorf("%s over a directory succeeded", op)
				} else if !strings.Contains(err.Error(), target+" is a directory") {
					t.Errorf("%s: error %q does not say %s is a directory", op, err, target)
				}
				if entries, _ := os.ReadDir(target); len(entries) != 0 {
					t.Errorf("%s put %v into the directory", op, entries[0].Name())
				}
				if left := tempNames(t, filepath.Dir(target)); len(left) != 0 {
					t.Errorf("%s left temporary files: %v", op, left)
				}
			}
			check("WriteFile", h.WriteFile(ctx, target, []byte("data"), 0o644))
			check("Upload", h.Upload(ctx, local, target, 0o644))
		})
	}
}

func TestUploadSkipsSameChecksum(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	ctx := context.Background()
	src := t.TempDir()
	first := filepath.Join(src, "first")
	second := filepath.Join(src, "second")
	if err := os.WriteFile(first, []byte("version 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(second, []byte("version 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// As root Upload writes over SFTP next to the target; as another user
	// it stages the file in /tmp and installs it through sudo.
	for _, user := range []string{"root", userNoPw} {
		t.Run(user, func(t *testing.T) {
			h := dialT(t, s.config(e, user))
			p := filepath.Join(t.TempDir(), "bin", "tool")
			upload := func(local string, mode fs.FileMode, wantTransfers int64) uint64 {
				t.Helper()
				if err := h.Upload(ctx, local, p, mode); err != nil {
					t.Fatal(err)
				}
				want, _ := os.ReadFile(local)
				if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
					t.Errorf("content %q, want %q", got, want)
				}
				fi, st := localStat(t, p)
				if fi.Mode() != mode || st.Uid != 0 {
					t.Errorf("mode %v owner %d, want %v root", fi.Mode(), st.Uid, mode)
				}
				if n := h.transfers.Load(); n != wantTransfers {
					t.Errorf("%d transfers, want %d", n, wantTransfers)
				}
				if left := tempNames(t, filepath.Dir(p)); len(left) != 0 {
					t.Errorf("temporary files left: %v", left)
				}
				return st.Ino
			}

			ino := upload(first, 0o755, 1)
			// A second name keeps the inode in use, so a replaced file cannot
			// get the same inode back.
			if err := os.Link(p, p+".pin"); err != nil {
				t.Fatal(err)
			}
			// Same content and mode: nothing is sent and the file is untouched.
			if again := upload(first, 0o755, 1); again != ino {
				t.Errorf("identical upload replaced the file (inode %d -> %d)", ino, again)
			}
			// Same content, other mode: only the mode is fixed.
			if again := upload(first, 0o700, 1); again != ino {
				t.Errorf("a mode change replaced the file (inode %d -> %d)", ino, again)
			}
			// Other content: the file is replaced by a new one.
			if again := upload(second, 0o700, 2); again == ino {
				t.Errorf("new content was written in place (inode %d)", ino)
			}
		})
	}
}

func TestUploadProgress(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	ctx := context.Background()
	cfg := s.config(e, "root")
	progress := &syncBuffer{}
	cfg.Progress = progress
	h := dialT(t, cfg)

	src := t.TempDir()
	small := filepath.Join(src, "small")
	if err := os.WriteFile(small, []byte("small file"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := h.Upload(ctx, small, filepath.Join(dst, "small"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := progress.String(); out != "" {
		t.Errorf("a small upload drew a progress bar: %q", out)
	}

	big := filepath.Join(src, "kube-binary")
	data := make([]byte, 3<<20+123)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, data, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dst, "bin", "kube-binary")
	if err := h.Upload(ctx, big, target, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, data) {
		t.Fatalf("the large upload arrived with %d bytes, want %d identical ones", len(got), len(data))
	}
	out := progress.String()
	for _, want := range []string{h.Name() + " kube-binary", "100%"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output %q does not contain %q", out, want)
		}
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("progress output %q does not end its line", out)
	}
}
