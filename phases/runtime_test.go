package phases

import (
	"archive/tar"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/reporter"
)

// The bundle's containerd is 2.x: config format 3, runc by its path, and
// kforge's own systemd unit for it.
func TestRuntimeFromTheBundle(t *testing.T) {
	d, h := fakeNode(t, ciHost)
	if err := Execute(context.Background(), Init(), d, Options{Only: "runtime"}); err != nil {
		t.Fatal(err)
	}
	files := h.Files()
	c := string(files["/etc/containerd/config.toml"].Data)
	if !strings.Contains(c, "version = 3") || !strings.Contains(c, `BinaryName = "/usr/local/bin/runc"`) {
		t.Errorf("containerd config for the bundle's containerd 2.x:\n%s", c)
	}
	unit := string(files["/etc/systemd/system/containerd.service"].Data)
	if !strings.Contains(unit, "ExecStart=/usr/local/bin/containerd --config /etc/containerd/config.toml") || strings.Contains(unit, "OOMScoreAdjust") {
		t.Errorf("containerd unit on a host without CAP_SYS_RESOURCE:\n%s", unit)
	}
	calls := strings.Join(h.Calls(), "\n")
	if strings.Contains(calls, "apt-get") {
		t.Errorf("the runtime phase ran a package manager:\n%s", calls)
	}
	if svc := string(files["/var/lib/kforge/supervisor/services/containerd.yaml"].Data); !strings.Contains(svc, "/usr/local/bin/containerd") || !strings.Contains(svc, "/usr/local/bin") {
		t.Errorf("supervised containerd:\n%s", svc)
	}
}

// A missing containerd is an error that says where it comes from, not a
// package manager run.
func TestRuntimeWithoutTheBundlesContainerd(t *testing.T) {
	d, h := fakeNode(t, ciHost)
	h.On(fake.Answer{ExitCode: 1}, "test", "-x", "/usr/local/bin/containerd")
	err := Execute(context.Background(), Init(), d, Options{Only: "runtime"})
	if err == nil || !strings.Contains(err.Error(), "no /usr/local/bin/containerd: the bundle phase installs it") {
		t.Fatalf("want an error naming the bundle, got %v", err)
	}
	if calls := strings.Join(h.Calls(), "\n"); strings.Contains(calls, "apt-get") {
		t.Errorf("ran a package manager:\n%s", calls)
	}
}

// runtime: host checks the host's containerd against the Kubernetes
// version: Debian's 1.6 serves 1.35, not 1.36 and newer.
func TestRuntimeFromTheHostChecksItsVersion(t *testing.T) {
	for _, tc := range []struct {
		version, kubernetes, want string
	}{
		{"containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1", "v1.37.2", "the host's containerd is v1.6.20 and Kubernetes v1.37.2 needs v2.0.0 or newer"},
		{"containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1", "v1.35.4", ""},
		{"containerd github.com/containerd/containerd/v2 v2.2.9 abc", "v1.37.2", ""},
	} {
		d, h := fakeNode(t, ciHost)
		d.Cluster.Runtime = config.RuntimeHost
		d.Cluster.KubernetesVersion = tc.kubernetes
		h.On(fake.Answer{Stdout: tc.version}, "containerd", "--version")
		err := Execute(context.Background(), Init(), d, Options{Only: "runtime"})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s with Kubernetes %s: %v", tc.version, tc.kubernetes, err)
			}
			c := string(h.Files()["/etc/containerd/config.toml"].Data)
			if wantV3 := strings.Contains(tc.version, "v2."); wantV3 != strings.Contains(c, "version = 3") {
				t.Errorf("%s: config format:\n%s", tc.version, c)
			}
			if _, ok := h.Files()["/etc/systemd/system/containerd.service"]; ok {
				t.Errorf("kforge wrote a containerd unit for the host's own containerd")
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with Kubernetes %s: want %q, got %v", tc.version, tc.kubernetes, tc.want, err)
		}
	}
}

// manifestOnlyBundle writes a bundle file that holds only a manifest:
// enough for the checks that read nothing else.
func manifestOnlyBundle(t *testing.T, m bundle.Manifest) string {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	p := filepath.Join(t.TempDir(), "b.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		data []byte
	}{{bundle.ManifestName, raw}, {bundle.ManifestName + ".sha256", []byte(hex.EncodeToString(sum[:]) + "  " + bundle.ManifestName + "\n")}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// signBundle signs a bundle with a new key and returns the public key.
func signBundle(t *testing.T, file string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.Sign(file, s); err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(s.PublicKey()))
}

// A bundle without a trusted signature is refused by preflight before
// anything is written; --unsafe-allow-unsigned-bundle lets it through with
// a warning (to the next check here: its version).
func TestPreflightRefusesAnUnsignedBundle(t *testing.T) {
	m := bundle.Manifest{Format: bundle.FormatVersion, KubernetesVersion: "v1.35.4", Arch: "amd64"}
	d, h := fakeNode(t, ciHost+"arch=x86_64\n")
	d.Cluster.Artifacts.Bundle = manifestOnlyBundle(t, m)
	err := Execute(context.Background(), Init(), d, Options{NoAPI: true})
	if err == nil || !strings.Contains(err.Error(), "is unsigned") || !strings.Contains(err.Error(), d.Cluster.Artifacts.Bundle) {
		t.Errorf("unsigned: %v", err)
	}
	if len(h.Paths()) != 0 {
		t.Errorf("a refused bundle wrote %v", h.Paths())
	}
	other := signBundle(t, manifestOnlyBundle(t, m))
	signBundle(t, d.Cluster.Artifacts.Bundle)
	d.Cluster.Artifacts.TrustedKeys = []string{other}
	if err := Execute(context.Background(), Init(), d, Options{NoAPI: true}); err == nil || !strings.Contains(err.Error(), "which is not a trusted key") {
		t.Errorf("signed by an untrusted key: %v", err)
	}

	d, _ = fakeNode(t, ciHost+"arch=x86_64\n")
	d.Cluster.Artifacts.Bundle = manifestOnlyBundle(t, m)
	var out strings.Builder
	d.Out = reporter.New(&out, nil, true)
	d.AllowUnsignedBundle = true
	if err := Execute(context.Background(), Init(), d, Options{NoAPI: true}); err == nil || !strings.Contains(err.Error(), "holds Kubernetes v1.35.4") {
		t.Errorf("unsigned, allowed: %v, want the next check's error", err)
	}
	if !strings.Contains(out.String(), "--unsafe-allow-unsigned-bundle: installing a bundle whose origin is not checked") {
		t.Errorf("no warning for an allowed unsigned bundle:\n%s", out.String())
	}
}

// A bundle for another architecture or Kubernetes version is refused by
// preflight, before anything is written to the host.
func TestPreflightRefusesABundleThatDoesNotFit(t *testing.T) {
	for _, tc := range []struct {
		arch, version, want string
	}{
		{"arm64", "v1.37.2", "the bundle is for linux/arm64 and the host is linux/amd64 (uname -m: x86_64)"},
		{"amd64", "v1.35.4", "holds Kubernetes v1.35.4 and the cluster is v1.37.2"},
	} {
		d, h := fakeNode(t, ciHost+"arch=x86_64\n")
		d.Cluster.Artifacts.Bundle = manifestOnlyBundle(t, bundle.Manifest{Format: bundle.FormatVersion, KubernetesVersion: tc.version, Arch: tc.arch})
		d.Cluster.Artifacts.TrustedKeys = []string{signBundle(t, d.Cluster.Artifacts.Bundle)}
		err := Execute(context.Background(), Init(), d, Options{NoAPI: true})
		if err == nil || !strings.Contains(err.Error(), "preflight") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: want a preflight error %q, got %v", tc.arch, tc.version, tc.want, err)
		}
		if len(h.Paths()) != 0 {
			t.Errorf("%s %s: a refused bundle wrote %v", tc.arch, tc.version, h.Paths())
		}
	}
}

// Under runtime: host, init's preflight refuses a containerd that the
// Kubernetes version does not support, before anything is written.
func TestPreflightChecksTheHostsContainerd(t *testing.T) {
	d, h := fakeNode(t, ciHost)
	d.Cluster.Runtime = config.RuntimeHost
	h.On(fake.Answer{Stdout: "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1"}, "containerd", "--version")
	err := Execute(context.Background(), Init(), d, Options{NoAPI: true})
	if err == nil || !strings.Contains(err.Error(), "preflight") || !strings.Contains(err.Error(), "needs v2.0.0 or newer") {
		t.Fatalf("want a preflight error about containerd 1.6, got %v", err)
	}
	if len(h.Paths()) != 0 {
		t.Errorf("a refused runtime wrote %v", h.Paths())
	}
}

// A re-run with another Kubernetes version than the node runs is refused
// (an upgrade is not init's); the same version goes through.
func TestPreflightRefusesAnotherVersionOnABuiltNode(t *testing.T) {
	for _, tc := range []struct{ running, want string }{
		{"v1.35.4", "this node runs Kubernetes v1.35.4"},
		{"v1.37.2", ""},
	} {
		d, h := fakeNode(t, ciHost)
		if err := h.WriteFile(context.Background(), "/etc/kubernetes/manifests/kube-apiserver.yaml",
			[]byte("spec:\n  containers:\n  - image: \"registry.k8s.io/kube-apiserver:"+tc.running+"\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := Execute(context.Background(), Init(), d, Options{Only: "preflight"})
		if tc.want == "" {
			if err != nil && strings.Contains(err.Error(), "KubernetesVersion") {
				t.Errorf("running %s: %v", tc.running, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--kubernetes-version v1.35.4") {
			t.Errorf("running %s: want %q, got %v", tc.running, tc.want, err)
		}
	}
}

// The host's own containerd config survives kforge: kept before the
// runtime phase writes over it, put back by reset; kforge's own unit and
// crictl.yaml, which the host did not have, go.
func TestResetPutsBackTheHostsContainerdConfig(t *testing.T) {
	ctx := context.Background()
	d, h := fakeNode(t, ciHost)
	own := []byte("# the OS package's config\nversion = 2\n")
	if err := h.WriteFile(ctx, "/etc/containerd/config.toml", own, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Execute(ctx, Init(), d, Options{Only: "runtime"}); err != nil {
		t.Fatal(err)
	}
	files := h.Files()
	if !strings.Contains(string(files["/etc/containerd/config.toml"].Data), "written by kforge") || string(files["/var/lib/kforge/preserved/etc/containerd/config.toml"].Data) != string(own) {
		t.Fatalf("the runtime phase did not keep the host's config: %v", h.Paths())
	}
	// A second run keeps the first copy, not kforge's config.
	if err := Execute(ctx, Init(), d, Options{Only: "runtime"}); err != nil {
		t.Fatal(err)
	}
	if got := string(h.Files()["/var/lib/kforge/preserved/etc/containerd/config.toml"].Data); got != string(own) {
		t.Fatalf("the kept copy became %q", got)
	}
	if err := Execute(ctx, Reset(), d, Options{Only: "files"}); err != nil {
		t.Fatal(err)
	}
	files = h.Files()
	if got := string(files["/etc/containerd/config.toml"].Data); got != string(own) {
		t.Errorf("reset left config.toml %q, want the host's own back", got)
	}
	for _, p := range []string{"/etc/systemd/system/containerd.service", "/etc/crictl.yaml", "/var/lib/kforge/preserved/etc/containerd/config.toml"} {
		if _, ok := files[p]; ok {
			t.Errorf("reset left %s", p)
		}
	}
}

// Reset removes the pod network's CNI files and leaves other tools' ones.
func TestResetLeavesOtherCNIFiles(t *testing.T) {
	ctx := context.Background()
	d, h := fakeNode(t, ciHost)
	for _, p := range []string{"/etc/cni/net.d/10-kforge-bridge.conflist", "/etc/cni/net.d/99-other-tool.conflist"} {
		if err := h.WriteFile(ctx, p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Execute(ctx, Reset(), d, Options{Only: "files"}); err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(h.Calls(), "\n")
	globbed := false
	for _, c := range h.Calls() {
		globbed = globbed || (strings.Contains(c, "/etc/cni/net.d") && strings.Contains(c, `"$1"/*`))
	}
	if !strings.Contains(calls, "/etc/cni/net.d/10-kforge-bridge.conflist") || !strings.Contains(calls, "/etc/cni/net.d/10-kuberouter.conflist") || globbed {
		t.Errorf("reset's CNI removal does not name kforge's files only:\n%s", calls)
	}
}
