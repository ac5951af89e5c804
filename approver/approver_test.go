package approver

import (
	"bytes"
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
	"k8s.io/client-go/kubernetes/fake"
)

func node(name string, addrs ...corev1.NodeAddress) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: addrs}}
}

var worker1 = node("worker-1",
	corev1.NodeAddress{Type: corev1.NodeHostName, Address: "worker-1"},
	corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.11"})

// request is a kubelet's serving request: what the kubelet sends, with the
// requester the API server records.
type request struct {
	username string
	groups   []string
	cn       string
	org      []string
	dns      []string
	ips      []string
	usages   []certificatesv1.KeyUsage
	signer   string
}

func kubeletRequest(nodeName string) request {
	return request{
		username: NodeUserPrefix + nodeName,
		groups:   []string{NodesGroup, "system:authenticated"},
		cn:       NodeUserPrefix + nodeName,
		org:      []string{NodesGroup},
		dns:      []string{nodeName},
		ips:      []string{"10.0.0.11"},
		usages:   []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
		signer:   certificatesv1.KubeletServingSignerName,
	}
}

func (r request) csr(t *testing.T, name string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: r.cn, Organization: r.org}, DNSNames: r.dns}
	for _, ip := range r.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: r.signer,
			Usages:     r.usages,
			Username:   r.username,
			Groups:     r.groups,
		},
	}
}

func TestReview(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*request)
		node   *corev1.Node
		denial string // "" approves
	}{
		{name: "the node's own request", edit: func(*request) {}, node: worker1},
		{name: "IP only", edit: func(r *request) { r.dns = nil }, node: worker1},
		{name: "another node's name in the SANs", edit: func(r *request) { r.dns = []string{"worker-2"} }, node: worker1, denial: `DNS SAN "worker-2" is not one of node worker-1's addresses`},
		{name: "a name the node does not have", edit: func(r *request) { r.dns = append(r.dns, "kubernetes.default.svc") }, node: worker1, denial: `DNS SAN "kubernetes.default.svc"`},
		{name: "a foreign IP SAN", edit: func(r *request) { r.ips = append(r.ips, "10.0.0.12") }, node: worker1, denial: "IP SAN 10.0.0.12 is not one of node worker-1's addresses"},
		{name: "client auth usage", edit: func(r *request) {
			r.usages = append(r.usages, certificatesv1.UsageClientAuth)
		}, node: worker1, denial: `usage "client auth" is not allowed`},
		{name: "no server auth", edit: func(r *request) {
			r.usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature}
		}, node: worker1, denial: `lack "server auth"`},
		{name: "a requester that is not a node", edit: func(r *request) {
			r.username, r.groups = "alice", []string{"system:authenticated"}
		}, node: worker1, denial: `requester "alice"`},
		{name: "a node user outside system:nodes", edit: func(r *request) {
			r.groups = []string{"system:authenticated"}
		}, node: worker1, denial: "is not a node"},
		{name: "another node's name as subject", edit: func(r *request) { r.cn = NodeUserPrefix + "worker-2" }, node: worker1, denial: `subject CN "system:node:worker-2" is not the requester`},
		{name: "a subject outside system:nodes", edit: func(r *request) { r.org = []string{"system:masters"} }, node: worker1, denial: "subject O [system:masters]"},
		{name: "a node that does not exist", edit: func(*request) {}, node: nil, denial: "node worker-1 does not exist"},
		{name: "no SAN", edit: func(r *request) { r.dns, r.ips = nil, nil }, node: worker1, denial: "names no subject alternative name"},
		{name: "another signer", edit: func(r *request) { r.signer = certificatesv1.KubeAPIServerClientKubeletSignerName }, node: worker1, denial: "is not kubernetes.io/kubelet-serving"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kubeletRequest("worker-1")
			tt.edit(&r)
			err := Review(r.csr(t, "csr-1"), tt.node)
			switch {
			case tt.denial == "" && err != nil:
				t.Fatalf("denied: %v", err)
			case tt.denial != "" && err == nil:
				t.Fatalf("approved; want a denial containing %q", tt.denial)
			case tt.denial != "" && !strings.Contains(err.Error(), tt.denial):
				t.Fatalf("denial %q lacks %q", err, tt.denial)
			}
		})
	}
}

func TestReviewForgedSignature(t *testing.T) {
	csr := kubeletRequest("worker-1").csr(t, "csr-1")
	block, _ := pem.Decode(csr.Spec.Request)
	block.Bytes[len(block.Bytes)-2] ^= 0xff
	csr.Spec.Request = pem.EncodeToMemory(block)
	if err := Review(csr, worker1); err == nil || !strings.Contains(err.Error(), "does not") {
		t.Fatalf("a request with a broken signature: %v", err)
	}
}

// TestControllerDecides runs the controller against a fake API: the
// node's own request is approved, a foreign IP denied with the reason,
// another signer's request and a decided one left alone.
func TestControllerDecides(t *testing.T) {
	good := kubeletRequest("worker-1").csr(t, "good")
	foreign := kubeletRequest("worker-1")
	foreign.ips = []string{"192.0.2.7"}
	bad := foreign.csr(t, "foreign-ip")
	client := kubeletRequest("worker-1")
	client.signer = certificatesv1.KubeAPIServerClientKubeletSignerName
	other := client.csr(t, "client")
	done := kubeletRequest("worker-1").csr(t, "done")
	done.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue, Reason: "Earlier"}}

	cs := fake.NewClientset(worker1, good, bad, other, done)
	var log bytes.Buffer
	c, factory := New(cs, &log)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	for _, n := range []string{"good", "foreign-ip", "client", "done", "gone"} {
		if err := c.Sync(ctx, n); err != nil {
			t.Fatalf("sync %s: %v", n, err)
		}
	}
	get := func(n string) []certificatesv1.CertificateSigningRequestCondition {
		csr, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return csr.Status.Conditions
	}
	if c := get("good"); len(c) != 1 || c[0].Type != certificatesv1.CertificateApproved || c[0].Reason != ApprovedReason {
		t.Errorf("good: conditions %+v, want Approved", c)
	}
	if c := get("foreign-ip"); len(c) != 1 || c[0].Type != certificatesv1.CertificateDenied || !strings.Contains(c[0].Message, "IP SAN 192.0.2.7") {
		t.Errorf("foreign-ip: conditions %+v, want Denied naming the IP", c)
	}
	if c := get("client"); len(c) != 0 {
		t.Errorf("another signer's request: conditions %+v, want none", c)
	}
	if c := get("done"); len(c) != 1 || c[0].Reason != "Earlier" {
		t.Errorf("a decided request: conditions %+v, want it untouched", c)
	}
	if !strings.Contains(log.String(), "request good from system:node:worker-1: approved") {
		t.Errorf("log lacks the approval:\n%s", log.String())
	}
}
