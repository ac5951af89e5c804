package images_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"kforge.dev/kforge/images"
	"kforge.dev/kforge/images/imagestest"
	"kforge.dev/kforge/internal/testtier"
)

// TestContainerdImportsUpstreamNames imports an archive into a containerd
// of its own (the host's containerd package, as root) and checks that `ctr
// -n k8s.io images ls` lists every image under its upstream name. Import
// also unpacks the layers, which fails if a layer does not match its diff
// ID.
func TestContainerdImportsUpstreamNames(t *testing.T) {
	testtier.Integration(t, "containerd and root")
	for _, bin := range []string{"containerd", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (scripts/install-deps.sh installs it)", bin)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("containerd needs root")
	}
	s := set(t)
	c := imagestest.Cache(t, s)
	specs := append(images.Specs(s, c), images.EchoSpec(c))
	archive, err := images.Archive(context.Background(), specs, images.BuildOptions{
		Cache: c, Base: imagestest.Base(t, filepath.Join(t.TempDir(), "runs")), Name: "test",
	})
	if err != nil {
		t.Fatal(err)
	}

	sock := startContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr := func(args ...string) string {
		out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", sock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ctr("images", "import", archive)
	got := strings.Fields(ctr("images", "ls", "-q"))
	want := append(s.All(), images.Echo)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ctr images ls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Unpacked: one snapshot per distinct layer chain, header line aside.
	if lines := strings.Split(strings.TrimSpace(ctr("snapshots", "ls")), "\n"); len(lines) < 2 {
		t.Errorf("import unpacked nothing: %q", lines)
	}
}

// startContainerd runs containerd with its root, state and socket in a
// temporary directory, without the CRI plugin, and returns its socket.
func startContainerd(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kf-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "c.sock")
	cfg := filepath.Join(dir, "config.toml")
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("containerd log:\n%s", b)
		}
		os.RemoveAll(dir)
	})
	for i := 0; i < 100; i++ {
		if err := exec.Command("ctr", "--address", sock, "version").Run(); err == nil {
			return sock
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("containerd did not answer within 10 s")
	return ""
}
