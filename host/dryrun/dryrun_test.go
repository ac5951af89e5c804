package dryrun

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/host/fake"
)

func TestDryRunWritesUnderDirAndRecordsCommands(t *testing.T) {
	real := fake.New("node1")
	real.On(fake.Answer{Stdout: "cgroup2fs\n"}, "stat", "-fc", "%T", "/sys/fs/cgroup")
	dir := t.TempDir()
	h := New(real, dir)
	ctx := context.Background()

	out, err := host.Probe(ctx, h, "stat", "-fc", "%T", "/sys/fs/cgroup")
	if err != nil || out != "cgroup2fs" {
		t.Fatalf("probe not run on the real host: %q %v", out, err)
	}
	if _, err := h.Run(ctx, host.Cmd{Argv: []string{"systemctl", "restart", "containerd"}, Sudo: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteFile(ctx, "/etc/kubernetes/admin.conf", []byte("cfg"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := real.Calls(); len(got) != 1 {
		t.Fatalf("real host saw %v; only the probe may run", got)
	}
	if len(real.Files()) != 0 {
		t.Fatal("dry run wrote to the real host")
	}
	st, err := os.Stat(filepath.Join(dir, "etc/kubernetes/admin.conf"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file not mirrored under dir with its mode: %v %v", st, err)
	}
	if b, err := h.ReadFile(ctx, "/etc/kubernetes/admin.conf"); err != nil || string(b) != "cfg" {
		t.Fatalf("ReadFile did not see the dry-run file: %q %v", b, err)
	}
	var buf bytes.Buffer
	h.Plan().Write(&buf, dir)
	for _, want := range []string{"0600 /etc/kubernetes/admin.conf", "systemctl restart containerd", "Services (1)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, buf.String())
		}
	}
}
