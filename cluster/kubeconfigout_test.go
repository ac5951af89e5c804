package cluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/phases"
)

// --kubeconfig-out writes through a fresh file of a random name: a symlink
// planted at the old predictable name is not followed.
func TestKubeconfigOutDoesNotFollowSymlinks(t *testing.T) {
	ctx := context.Background()
	h := fake.New("cp")
	if err := h.WriteFile(ctx, layout.AdminConf, []byte("admin credentials"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "admin.conf")
	if err := os.Symlink(victim, dst+".kforge-tmp"); err != nil {
		t.Fatal(err)
	}
	d := &phases.Data{Config: phases.Config{Host: h}}
	if err := copyAdmin(ctx, d, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "untouched" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	st, err := os.Lstat(dst)
	if err != nil || st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
		t.Fatalf("%s: %v %v, want a regular 0600 file", dst, st.Mode(), err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "admin credentials" {
		t.Errorf("%s holds %q", dst, b)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".admin.conf.kforge-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
