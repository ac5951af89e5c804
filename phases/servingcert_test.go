package phases

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"kforge.dev/kforge/approver"
	fakehost "kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/reporter"
)

// servingRequest is the kubelet-serving request node cp1's kubelet sends,
// for the given IP SANs.
func servingRequest(t *testing.T, name string, ips ...string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: approver.NodeUserPrefix + "cp1", Organization: []string{approver.NodesGroup}}, DNSNames: []string{"cp1"}}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.Now()},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certificatesv1.KubeletServingSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
			Username:   approver.NodeUserPrefix + "cp1",
			Groups:     []string{approver.NodesGroup, "system:authenticated"},
		},
	}
}

var cp1 = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp1"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
	{Type: corev1.NodeHostName, Address: "cp1"}, {Type: corev1.NodeInternalIP, Address: "10.0.0.11"}}}}

// The control plane's wait approves its own node's pending request as the
// approver would, and returns once the kubelet has written the signed
// certificate (the fake API server's approval writes it here).
func TestWaitServingCertDecidesTheNodesOwnRequest(t *testing.T) {
	cs := fake.NewClientset(cp1, servingRequest(t, "csr-own", "10.0.0.11"))
	h := fakehost.New("cp1")
	var approvals int
	cs.PrependReactor("update", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "approval" {
			approvals++
			if err := h.WriteFile(context.Background(), layout.KubeletServingCert, []byte("cert"), 0o600); err != nil {
				t.Error(err)
			}
		}
		return false, nil, nil
	})
	d := &Data{Config: Config{Host: h, Out: reporter.Discard()}, NodeName: "cp1"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.waitServingCert(ctx, cs, true); err != nil {
		t.Fatalf("waitServingCert: %v", err)
	}
	csr, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, "csr-own", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := csr.Status.Conditions; len(c) != 1 || c[0].Type != certificatesv1.CertificateApproved || c[0].Reason != approver.ApprovedReason {
		t.Errorf("conditions %+v, want one Approved with reason %s", c, approver.ApprovedReason)
	}
	if approvals != 1 {
		t.Errorf("%d approvals, want 1", approvals)
	}
}

// A request the review fails is left pending for kforge's approver to deny,
// and one already decided is not decided again.
func TestDecideServingCSRLeavesWhatTheReviewFails(t *testing.T) {
	foreign := servingRequest(t, "csr-foreign", "192.0.2.7")
	cs := fake.NewClientset(cp1, foreign)
	d := &Data{Config: Config{Host: fakehost.New("cp1"), Out: reporter.Discard()}, NodeName: "cp1"}
	ctx := context.Background()
	state := d.decideServingCSR(ctx, cs, foreign)
	if !strings.Contains(state, "fails kforge's review") || !strings.Contains(state, "192.0.2.7") {
		t.Errorf("state %q, want it to say the review failed on 192.0.2.7", state)
	}
	got, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, "csr-foreign", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 0 {
		t.Errorf("conditions %+v, want the request left pending", got.Status.Conditions)
	}

	// Decided by the approver: the wait only describes it.
	denied := servingRequest(t, "csr-denied", "10.0.0.11")
	denied.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue, Reason: approver.DeniedReason, Message: "kforge: no"}}
	cs = fake.NewClientset(cp1, denied)
	csr, state := d.servingCSR(ctx, cs)
	if csr == nil || !approver.Decided(csr) || !strings.Contains(state, "kforge: no") {
		t.Errorf("servingCSR: %v, %q; want the denied request and its message", csr, state)
	}
}
