package phases

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"kforge.dev/kforge/approver"
	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/internal/controlplanetest"
	"kforge.dev/kforge/kube"
)

// fakeKforgeBinary stands for kforge's executable where a test only needs
// its image's name.
func fakeKforgeBinary(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "kforge")
	if err := os.WriteFile(p, []byte("kforge"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// servingApprover runs kforge's approver with the token of the
// ServiceAccount the addons created (so their RBAC is what is tested)
// against the real API server and controller manager. Node w8, joined by
// TLS bootstrap, asks for its serving certificate: approved and signed by
// the cluster CA for server auth. Its request for an IP it does not have
// and a request for w8 from someone else are denied with the reason.
func servingApprover(ctx context.Context, t *testing.T, cp *controlplanetest.ControlPlane, super kubernetes.Interface, result *discovery.Result, token discovery.Token, caPEM []byte) {
	tr, err := super.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx, "kforge-csr-approver", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the approver's ServiceAccount: %v", err)
	}
	sa, err := kubernetes.NewForConfig(&rest.Config{Host: cp.Server, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- approver.RunElected(actx, sa, "kube-system", "test", io.Discard) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("the approver: %v", err)
		}
	}()

	kc, err := discovery.BootstrapKubeconfig(result, token)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := kube.New(kc, "")
	if err != nil {
		t.Fatal(err)
	}
	cert, key := bootstrapCSR(ctx, t, bc.Kube, "w8")
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	node, err := kubernetes.NewForConfig(&rest.Config{Host: cp.Server, TLSClientConfig: rest.TLSClientConfig{
		CAData:   caPEM,
		CertData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		KeyData:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	// What the kubelet does: register, report its addresses, ask.
	if _, err := node.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w8"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("node w8 registering itself: %v", err)
	}
	// The controller manager updates a new Node too: retry on a conflict.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := node.CoreV1().Nodes().Get(ctx, "w8", metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.8"}, {Type: corev1.NodeHostName, Address: "w8"}}
		_, err = node.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(c kubernetes.Interface, ip string) string {
		t.Helper()
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject:  pkix.Name{CommonName: approver.NodeUserPrefix + "w8", Organization: []string{NodesGroup}},
			DNSNames: []string{"w8"}, IPAddresses: []net.IP{net.ParseIP(ip)},
		}, k)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := c.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "csr-"},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
				SignerName: certificatesv1.KubeletServingSignerName,
				Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return csr.Name
	}
	own, foreign, other := ask(node, "127.0.0.8"), ask(node, "127.0.0.9"), ask(super, "127.0.0.8")
	// settled waits until the request is denied, or approved and signed.
	settled := func(name string) *certificatesv1.CertificateSigningRequest {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			csr, err := super.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range csr.Status.Conditions {
				if c.Type == certificatesv1.CertificateDenied || (c.Type == certificatesv1.CertificateApproved && len(csr.Status.Certificate) > 0) {
					return csr
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("CSR %s undecided or unsigned after 60s: %+v", name, csr.Status.Conditions)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	csr := settled(own)
	if c := csr.Status.Conditions[0]; c.Type != certificatesv1.CertificateApproved || c.Reason != approver.ApprovedReason {
		t.Fatalf("the node's own request: %+v", csr.Status.Conditions)
	}
	b, _ := pem.Decode(csr.Status.Certificate)
	served, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if _, err := served.Verify(x509.VerifyOptions{Roots: pool, DNSName: "w8", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("w8's serving certificate does not verify against the cluster CA: %v", err)
	}
	for _, c := range []struct{ name, reason string }{{foreign, "IP SAN 127.0.0.9 is not one of node w8's addresses"}, {other, "is not a node"}} {
		csr := settled(c.name)
		if cond := csr.Status.Conditions[0]; cond.Type != certificatesv1.CertificateDenied || !strings.Contains(cond.Message, c.reason) {
			t.Errorf("CSR %s from %s: %+v, want Denied with %q", c.name, csr.Spec.Username, csr.Status.Conditions, c.reason)
		}
	}
}
