package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// kforge runs the command line in-process and returns its output. The dry
// runs pass --ignore-preflight-errors ContainerRuntime: without a bundle,
// the machine that runs the tests need not have kforge's containerd.
func kforge(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--plain"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestInitDryRunWritesTheControlPlaneUnderOutputDir(t *testing.T) {
	dir := t.TempDir()
	out, err := kforge(t, "init", "--dry-run", "--ignore-preflight-errors", "ContainerRuntime", "--output-dir", dir, "--node-name", "cp1", "--apiserver-advertise-address", "10.1.2.3")
	if err != nil {
		t.Fatalf("init --dry-run: %v\n%s", err, out)
	}
	for _, phase := range []string{"preflight", "certs", "kubeconfig", "etcd", "control-plane/apiserver", "kubelet"} {
		if !strings.Contains(out, "[ok] "+phase+" ") {
			t.Errorf("no [ok] line for phase %s in:\n%s", phase, out)
		}
	}
	private := []string{
		"etc/kubernetes/pki/ca.key", "etc/kubernetes/pki/sa.key", "etc/kubernetes/pki/etcd/ca.key",
		"etc/kubernetes/admin.conf", "etc/kubernetes/super-admin.conf", "etc/kubernetes/kubelet.conf",
		"etc/kubernetes/controller-manager.conf", "etc/kubernetes/scheduler.conf",
	}
	for _, p := range private {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("missing %s: %v", p, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	for _, m := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		b, err := os.ReadFile(filepath.Join(dir, "etc/kubernetes/manifests", m+".yaml"))
		if err != nil {
			t.Fatalf("manifest %s: %v", m, err)
		}
		if m == "kube-apiserver" && !strings.Contains(string(b), "--advertise-address=10.1.2.3") {
			t.Errorf("kube-apiserver.yaml does not advertise the flag's address:\n%s", b)
		}
	}
	kc, err := clientcmd.LoadFromFile(filepath.Join(dir, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatalf("admin.conf: %v", err)
	}
	if got := kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].Server; got != "https://10.1.2.3:6443" {
		t.Errorf("admin.conf server = %s", got)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "var/lib/kubelet/config.yaml"))
	if err != nil || !strings.Contains(string(cfg), "kind: KubeletConfiguration") {
		t.Errorf("kubelet config: %v\n%s", err, cfg)
	}

	ca := readCert(t, filepath.Join(dir, "etc/kubernetes/pki/ca.crt"))
	out, err = kforge(t, "init", "--dry-run", "--ignore-preflight-errors", "ContainerRuntime", "--output-dir", dir, "--node-name", "cp1", "--apiserver-advertise-address", "10.1.2.3")
	if err != nil {
		t.Fatalf("second init --dry-run: %v\n%s", err, out)
	}
	if again := readCert(t, filepath.Join(dir, "etc/kubernetes/pki/ca.crt")); !again.Equal(ca) {
		t.Errorf("a re-run replaced the CA")
	}
}

func TestInitDryRunRefusesChangedSANs(t *testing.T) {
	dir := t.TempDir()
	if out, err := kforge(t, "init", "--dry-run", "--ignore-preflight-errors", "ContainerRuntime", "--output-dir", dir, "--apiserver-advertise-address", "10.1.2.3"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	out, err := kforge(t, "init", "--dry-run", "--ignore-preflight-errors", "ContainerRuntime", "--output-dir", dir, "--apiserver-advertise-address", "10.1.2.3", "--apiserver-cert-extra-sans", "api.example.com")
	if err == nil || !strings.Contains(err.Error(), "apiserver.crt") || !strings.Contains(err.Error(), "kforge init phase certs") {
		t.Fatalf("want an error naming apiserver.crt and how to renew, got %v\n%s", err, out)
	}
}

func TestInitPhaseRunsOnePhase(t *testing.T) {
	dir := t.TempDir()
	out, err := kforge(t, "init", "phase", "certs", "--dry-run", "--output-dir", dir)
	if err != nil {
		t.Fatalf("init phase certs: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/kubernetes/pki/apiserver.crt")); err != nil {
		t.Errorf("phase certs wrote no apiserver.crt: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/kubernetes/admin.conf")); err == nil {
		t.Errorf("phase certs also wrote admin.conf")
	}
	if strings.Contains(out, "[ok] preflight") {
		t.Errorf("phase certs ran preflight:\n%s", out)
	}
}

func TestSkipPhasesUnknownNameIsAnError(t *testing.T) {
	_, err := kforge(t, "init", "--dry-run", "--ignore-preflight-errors", "ContainerRuntime", "--output-dir", t.TempDir(), "--skip-phases", "certs,nope")
	if err == nil || !strings.Contains(err.Error(), "--skip-phases") || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("want an error naming --skip-phases and nope, got %v", err)
	}
}

func TestInitHelpShowsPhaseTree(t *testing.T) {
	out, err := kforge(t, "init", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"preflight", "control-plane", "apiserver", "scheduler"} {
		if !strings.Contains(out, s) {
			t.Errorf("init --help lacks %s", s)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	defaults, err := kforge(t, "config", "print-defaults")
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(defaults), 0o644)
	if out, err := kforge(t, "config", "validate", "-f", good); err != nil {
		t.Fatalf("print-defaults output does not validate: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(defaults, "  podSubnet:", "  podSubnets:", 1)), 0o644)
	_, err = kforge(t, "config", "validate", "-f", bad)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:") || !strings.Contains(err.Error(), "podSubnets") {
		t.Fatalf("want an error naming bad.yaml:LINE and podSubnets, got %v", err)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	if out, err := kforge(t, "version"); err != nil || !strings.Contains(out, "kforge") {
		t.Errorf("version: %v %q", err, out)
	}
	if out, err := kforge(t, "completion", "bash"); err != nil || !strings.Contains(out, "kforge") {
		t.Errorf("completion bash: %v", err)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUnknownPhaseAndBadParallelAreErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"init", "phase", "bogus"}, `kforge init: no phase "bogus"; the phases are preflight, bundle, runtime, images,`},
		{[]string{"init", "phase", "control-plane", "bogus"}, `no phase "bogus"; the phases are apiserver, controller-manager, scheduler`},
		{[]string{"join", "phase", "bogus"}, `kforge join: no phase "bogus"`},
		{[]string{"init", "--parallel", "-5"}, "--parallel -5: give a number of hosts, 1 or more"},
		{[]string{"reset", "--parallel", "0", "--force"}, "--parallel 0: give a number of hosts, 1 or more"},
	} {
		_, err := kforge(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("kforge %v: want an error with %q, got %v", tc.args, tc.want, err)
		}
	}
}
