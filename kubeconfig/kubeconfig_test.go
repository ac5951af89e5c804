package kubeconfig_test

import (
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/kubeconfig"
	"kforge.dev/kforge/providers/local"
)

// setup makes a PKI under a temporary root and returns the root, its Host
// and a kubeconfig spec for it.
func setup(t *testing.T) (string, *local.Host, kubeconfig.Spec) {
	t.Helper()
	root := t.TempDir()
	h := local.Rooted(root)
	ip := net.ParseIP("10.0.0.5")
	if _, err := certs.Ensure(context.Background(), h, certs.Spec{NodeName: "cp1", AdvertiseAddress: ip}); err != nil {
		t.Fatal(err)
	}
	return root, h, kubeconfig.Spec{NodeName: "cp1", AdvertiseAddress: ip, ControlPlaneEndpoint: "api.example.com"}
}

func TestEnsureWritesKubeadmsFiveKubeconfigs(t *testing.T) {
	root, h, spec := setup(t)
	r, err := kubeconfig.Ensure(context.Background(), h, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Created()) != 5 {
		t.Fatalf("created %v, want 5 files", r.Created())
	}
	caPEM, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/ca.crt"))
	ca, err := certs.ParseCert(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ cn, org, server string }{
		"admin":              {"kubernetes-admin", "kubeadm:cluster-admins", "https://api.example.com:6443"},
		"super-admin":        {"kubernetes-super-admin", "system:masters", "https://api.example.com:6443"},
		"kubelet":            {"system:node:cp1", "system:nodes", "https://api.example.com:6443"},
		"controller-manager": {"system:kube-controller-manager", "", "https://10.0.0.5:6443"},
		"scheduler":          {"system:kube-scheduler", "", "https://10.0.0.5:6443"},
	}
	for name, w := range want {
		p := filepath.Join(root, "etc/kubernetes", name+".conf")
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, fi.Mode().Perm())
		}
		cfg, err := clientcmd.LoadFromFile(p)
		if err != nil {
			t.Fatalf("%s does not load with client-go: %v", name, err)
		}
		rest, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rest.Host != w.server {
			t.Errorf("%s: server %s, want %s", name, rest.Host, w.server)
		}
		cert, err := certs.ParseCert(rest.CertData)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cert.Subject.CommonName != w.cn {
			t.Errorf("%s: CN %q, want %q", name, cert.Subject.CommonName, w.cn)
		}
		if org := strings.Join(cert.Subject.Organization, ","); org != w.org {
			t.Errorf("%s: O %q, want %q", name, org, w.org)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: client cert does not chain to the CA for client auth: %v", name, err)
		}
		if _, err := certs.ParseKey(rest.KeyData); err != nil {
			t.Errorf("%s: key: %v", name, err)
		}
	}
}

func TestEnsureReusesAndRefusesForeignFiles(t *testing.T) {
	root, h, spec := setup(t)
	ctx := context.Background()
	if _, err := kubeconfig.Ensure(ctx, h, spec); err != nil {
		t.Fatal(err)
	}
	admin := filepath.Join(root, "etc/kubernetes/admin.conf")
	before, _ := os.ReadFile(admin)
	os.Remove(filepath.Join(root, "etc/kubernetes/scheduler.conf"))
	r, err := kubeconfig.Ensure(ctx, h, spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Created(); len(got) != 1 || !strings.HasSuffix(got[0], "scheduler.conf") {
		t.Errorf("re-run created %v, want only scheduler.conf", got)
	}
	if after, _ := os.ReadFile(admin); string(after) != string(before) {
		t.Errorf("re-run rewrote admin.conf")
	}

	// A server that no longer matches the spec is an error naming the file.
	spec.ControlPlaneEndpoint = "other.example.com:443"
	_, err = kubeconfig.Ensure(ctx, h, spec)
	if err == nil || !strings.Contains(err.Error(), "admin.conf") || !strings.Contains(err.Error(), "kforge init phase kubeconfig") {
		t.Fatalf("want an error naming admin.conf and how to renew, got %v", err)
	}
}

func TestEnsureNeedsTheCA(t *testing.T) {
	h := local.Rooted(t.TempDir())
	_, err := kubeconfig.Ensure(context.Background(), h, kubeconfig.Spec{NodeName: "n", AdvertiseAddress: net.ParseIP("10.0.0.1"), Now: time.Now})
	if err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Fatalf("want an error naming ca.crt, got %v", err)
	}
}
