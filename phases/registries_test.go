package phases

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/layout"
)

// answerHostsGrep makes the fake host answer the stale-registry listing
// from its files, as grep -l would.
func answerHostsGrep(h *fake.Host) {
	h.OnFunc(func(c host.Cmd) fake.Answer {
		if !strings.Contains(c.Argv[2], "hosts.toml") {
			return fake.Answer{}
		}
		var out []string
		for p, f := range h.Files() {
			if strings.HasPrefix(p, layout.ContainerdCertsDir+"/") && strings.HasSuffix(p, "/hosts.toml") && strings.Contains(string(f.Data), kforgeMark) {
				out = append(out, p)
			}
		}
		sort.Strings(out)
		return fake.Answer{Stdout: strings.Join(out, "\n")}
	}, "sh", "-c")
}

func TestRuntimeWritesRegistries(t *testing.T) {
	ctx := context.Background()
	d, h := fakeNode(t, ciHost)
	answerHostsGrep(h)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KFORGE_TEST_REGISTRY_USER", "robot")
	const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	d.Cluster.Registries = map[string]config.Registry{
		"docker.io":           {Mirrors: []string{"https://mirror.example:5443", "http://10.0.0.9:5000"}},
		"mirror.example:5443": {CA: ca, Auth: &config.RegistryAuth{UsernameFrom: "env:KFORGE_TEST_REGISTRY_USER", PasswordFrom: "file:" + pw}},
	}
	// A registry an earlier run wrote, and one of the host's own.
	must(t, h.WriteFile(ctx, layout.ContainerdCertsDir+"/old.example/hosts.toml", []byte("# "+kforgeMark+"\n"), 0o644))
	must(t, h.WriteFile(ctx, layout.ContainerdCertsDir+"/own.example/hosts.toml", []byte("server = \"https://own.example\"\n"), 0o644))

	must(t, Execute(ctx, Init(), d, Options{Only: "runtime"}))
	files := h.Files()
	hub := string(files[layout.ContainerdCertsDir+"/docker.io/hosts.toml"].Data)
	m := strings.Index(hub, `[host."https://mirror.example:5443"]`)
	if m < 0 || strings.Index(hub, `[host."http://10.0.0.9:5000"]`) < m || !strings.Contains(hub, `ca = "/etc/containerd/certs.d/mirror.example:5443/ca.crt"`) || strings.Contains(hub, "server =") {
		t.Errorf("docker.io hosts.toml:\n%s", hub)
	}
	mirror := string(files[layout.ContainerdCertsDir+"/mirror.example:5443/hosts.toml"].Data)
	if !strings.Contains(mirror, `server = "https://mirror.example:5443"`) || string(files[layout.ContainerdCertsDir+"/mirror.example:5443/ca.crt"].Data) != ca {
		t.Errorf("mirror hosts.toml:\n%s", mirror)
	}
	cfg := files[layout.ContainerdConfig]
	if cfg.Mode != fs.FileMode(layout.SecretMode) || !strings.Contains(string(cfg.Data), `configs."mirror.example:5443".auth]`) || !strings.Contains(string(cfg.Data), `password = "s3cret"`) {
		t.Errorf("config.toml (mode %o) lacks the mirror's credentials:\n%s", cfg.Mode, cfg.Data)
	}
	for _, c := range h.Calls() {
		if strings.Contains(c, "s3cret") {
			t.Errorf("a command carries the password: %s", c)
		}
	}
	stored := files[layout.RegistryAuth]
	var got map[string]StoredAuth
	if err := json.Unmarshal(stored.Data, &got); err != nil || stored.Mode != fs.FileMode(layout.SecretMode) || got["mirror.example:5443"] != (StoredAuth{"robot", "s3cret"}) {
		t.Errorf("stored credentials (mode %o): %s %v", stored.Mode, stored.Data, err)
	}
	if _, ok := files[layout.ContainerdCertsDir+"/old.example/hosts.toml"]; ok {
		t.Error("the registry kforge wrote before and the file no longer lists is still there")
	}
	if _, ok := files[layout.ContainerdCertsDir+"/own.example/hosts.toml"]; !ok {
		t.Error("the host's own registry config was removed")
	}

	// A re-run where the references do not resolve (a joined node, a
	// later run without the environment) uses what was stored.
	os.Unsetenv("KFORGE_TEST_REGISTRY_USER")
	must(t, Execute(ctx, Init(), d, Options{Only: "runtime"}))
	if !strings.Contains(string(h.Files()[layout.ContainerdConfig].Data), `username = "robot"`) {
		t.Error("the re-run lost the stored credentials")
	}
	// Without them anywhere, the error names the registry, the host and
	// what to do.
	must(t, h.Remove(ctx, layout.RegistryAuth))
	err := Execute(ctx, Init(), d, Options{Only: "runtime"})
	if err == nil || !strings.Contains(err.Error(), "registries.mirror.example:5443.auth on node1") || !strings.Contains(err.Error(), "KFORGE_TEST_REGISTRY_USER is not set") {
		t.Fatalf("unresolvable credentials: %v", err)
	}

	// Reset removes kforge's registries and leaves the host's own.
	must(t, Execute(ctx, Reset(), d, Options{Only: "files"}))
	for p := range h.Files() {
		if strings.HasPrefix(p, layout.ContainerdCertsDir+"/docker.io") || strings.HasPrefix(p, layout.ContainerdCertsDir+"/mirror.example") {
			t.Errorf("reset left %s", p)
		}
	}
	if _, ok := h.Files()[layout.ContainerdCertsDir+"/own.example/hosts.toml"]; !ok {
		t.Error("reset removed the host's own registry config")
	}
}

func TestCopyRegistryAuth(t *testing.T) {
	ctx := context.Background()
	cp, worker := fake.New("cp"), fake.New("w1")
	must(t, CopyRegistryAuth(ctx, cp, worker))
	if len(worker.Files()) != 0 {
		t.Fatal("copied credentials that do not exist")
	}
	must(t, cp.WriteFile(ctx, layout.RegistryAuth, []byte(`{"r":{"username":"u","password":"p"}}`), 0o600))
	must(t, CopyRegistryAuth(ctx, cp, worker))
	if f := worker.Files()[layout.RegistryAuth]; f.Mode != 0o600 || string(f.Data) != `{"r":{"username":"u","password":"p"}}` {
		t.Fatalf("worker got %+v", f)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// imageRepository moves the workload add-ons' images to the user's
// registry, pulled when absent; without it they come from the bundle and
// are never pulled.
func TestImageRepository(t *testing.T) {
	d, _ := fakeNode(t, ciHost)
	all := func() string {
		addons, err := d.renderAddons(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, a := range addons {
			b.Write(a.Data)
		}
		return b.String()
	}
	bundle := all()
	if strings.Contains(bundle, "harbor.example") || !strings.Contains(bundle, "image: registry.k8s.io/metrics-server/metrics-server:") {
		t.Fatalf("defaults:\n%s", bundle)
	}
	d.Cluster.ImageRepository = "harbor.example/k8s"
	moved := all()
	for _, want := range []string{
		"image: harbor.example/k8s/coredns/coredns:",
		"image: harbor.example/k8s/metrics-server/metrics-server:",
		"image: harbor.example/k8s/rancher/local-path-provisioner:",
		"imagePullPolicy: IfNotPresent",
		"image: registry.k8s.io/kube-proxy:",
	} {
		if !strings.Contains(moved, want) {
			t.Errorf("with imageRepository the add-ons lack %q", want)
		}
	}
	if strings.Contains(moved, "imagePullPolicy: Never\n        ports") {
		t.Error("metrics-server still never pulls")
	}
}

// A joined worker gets a changed cluster file's registries from init -f
// without a new join.
func TestRefreshRuntime(t *testing.T) {
	ctx := context.Background()
	d, h := fakeNode(t, ciHost)
	answerHostsGrep(h)
	must(t, RefreshRuntime(ctx, d))
	if _, ok := h.Files()[layout.ContainerdCertsDir+"/docker.io/hosts.toml"]; ok {
		t.Fatal("a registry without any in the cluster file")
	}
	d.Cluster.Registries = map[string]config.Registry{"docker.io": {Mirrors: []string{"https://m.example"}}}
	must(t, RefreshRuntime(ctx, d))
	if !strings.Contains(string(h.Files()[layout.ContainerdCertsDir+"/docker.io/hosts.toml"].Data), `[host."https://m.example"]`) {
		t.Fatal("the refresh did not write docker.io's hosts.toml")
	}
	d.Cluster.Registries = nil
	must(t, RefreshRuntime(ctx, d))
	if _, ok := h.Files()[layout.ContainerdCertsDir+"/docker.io/hosts.toml"]; ok {
		t.Fatal("the refresh left a registry the cluster file dropped")
	}
}
