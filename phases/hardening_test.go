package phases

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kforge.dev/kforge/internal/controlplanetest"
	"kforge.dev/kforge/layout"
)

// TestHardenedControlPlane starts the real etcd and API server with
// kforge's rendered flags and checks what the flags promise: a Secret is
// stored encrypted with secretbox in etcd, and its creation is in the
// audit log without its data.
func TestHardenedControlPlane(t *testing.T) {
	cp := controlplanetest.Start(t, controlplanetest.Options{WithoutControllers: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := cp.Client(t, "super-admin").Kube
	const value = "kforge-hardening-test-value"
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "at-rest"},
		StringData: map[string]string{"v": value},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	pki := func(name string) string { return cp.Path(filepath.Join(layout.PKIDir, name)) }
	certPEM, _ := os.ReadFile(pki("apiserver-etcd-client.crt"))
	keyPEM, _ := os.ReadFile(pki("apiserver-etcd-client.key"))
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(pki("etcd/ca.crt"))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no etcd CA")
	}
	etcd, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"https://127.0.0.1:2379"},
		DialTimeout: 5 * time.Second,
		TLS:         &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	resp, err := etcd.Get(ctx, "/registry/secrets/default/at-rest")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcd get: %v, %d keys", err, len(resp.Kvs))
	}
	raw := resp.Kvs[0].Value
	if !bytes.HasPrefix(raw, []byte("k8s:enc:secretbox:v1:key1:")) {
		t.Errorf("the Secret is stored as %q..., want the k8s:enc:secretbox:v1:key1: prefix", raw[:min(len(raw), 40)])
	}
	if bytes.Contains(raw, []byte(value)) {
		t.Error("the Secret's value is in etcd in the clear")
	}

	log, err := os.ReadFile(cp.Path(layout.AuditLog))
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	var found bool
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, `"resource":"secrets"`) && strings.Contains(line, `"name":"at-rest"`) && strings.Contains(line, `"verb":"create"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit event for the Secret's creation in %d bytes of %s", len(log), layout.AuditLog)
	}
	if strings.Contains(string(log), value) || strings.Contains(string(log), "a2ZvcmdlLWhhcmRlbmluZy10ZXN0LXZhbHVl") {
		t.Error("the audit log holds the Secret's value")
	}
}
