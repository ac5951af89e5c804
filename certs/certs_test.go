package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testSpec() Spec {
	return Spec{
		NodeName:             "cp-1",
		AdvertiseAddress:     net.ParseIP("192.168.10.5"),
		ControlPlaneEndpoint: "k8s.example.com:6443",
		ExtraSANs:            []string{"api.example.com", "203.0.113.7"},
		Now:                  func() time.Time { return testNow },
	}
}

// want is the PKI kubeadm makes for testSpec, written out independently of
// List.
var want = []struct {
	base, ca, cn string
	org          []string
	usages       []x509.ExtKeyUsage
	dns          []string
	ips          []string
}{
	{base: "ca", cn: "kubernetes"},
	{base: "apiserver", ca: "ca", cn: "kube-apiserver", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		dns: []string{"cp-1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "k8s.example.com", "api.example.com"},
		ips: []string{"10.96.0.1", "192.168.10.5", "203.0.113.7"}},
	{base: "apiserver-kubelet-client", ca: "ca", cn: "kube-apiserver-kubelet-client", org: []string{"kubeadm:cluster-admins"},
		usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	{base: "front-proxy-ca", cn: "front-proxy-ca"},
	{base: "front-proxy-client", ca: "front-proxy-ca", cn: "front-proxy-client", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	{base: "etcd/ca", cn: "etcd-ca"},
	{base: "etcd/server", ca: "etcd/ca", cn: "cp-1", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		dns: []string{"cp-1", "localhost"}, ips: []string{"192.168.10.5", "127.0.0.1", "::1"}},
	{base: "etcd/peer", ca: "etcd/ca", cn: "cp-1", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		dns: []string{"cp-1", "localhost"}, ips: []string{"192.168.10.5", "127.0.0.1", "::1"}},
	{base: "etcd/healthcheck-client", ca: "etcd/ca", cn: "kube-etcd-healthcheck-client", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	{base: "apiserver-etcd-client", ca: "etcd/ca", cn: "kube-apiserver-etcd-client", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
}

const pki = "/etc/kubernetes/pki"

func ensure(t *testing.T, h *memHost, s Spec) Report {
	t.Helper()
	r, err := Ensure(context.Background(), h, s)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return r
}

func loadPair(t *testing.T, h *memHost, base string) *KeyPair {
	t.Helper()
	kp, err := ParseKeyPair(h.get(t, pki+"/"+base+".crt").data, h.get(t, pki+"/"+base+".key").data)
	if err != nil {
		t.Fatalf("%s: %v", base, err)
	}
	return kp
}

func TestEnsureCreatesKubeadmPKI(t *testing.T) {
	for _, alg := range []string{AlgorithmECDSAP256, AlgorithmRSA2048} {
		t.Run(alg, func(t *testing.T) {
			h := newMemHost()
			s := testSpec()
			s.Algorithm = alg
			if alg == AlgorithmRSA2048 {
				s.Validity = 48 * time.Hour
				s.CAValidity = 30 * 24 * time.Hour
			}
			r := ensure(t, h, s)
			if len(r.Reused()) != 0 || len(r.Created()) != 2*len(want)+2 {
				t.Fatalf("report: created %v, reused %v", r.Created(), r.Reused())
			}
			wantPaths := []string{pki + "/sa.key", pki + "/sa.pub"}
			for _, w := range want {
				wantPaths = append(wantPaths, pki+"/"+w.base+".crt", pki+"/"+w.base+".key")
			}
			slices.Sort(wantPaths)
			if got := h.paths(); !slices.Equal(got, wantPaths) {
				t.Fatalf("files:\n%v\nwant\n%v", got, wantPaths)
			}
			caValidity, validity := 10*365*24*time.Hour, 365*24*time.Hour
			if alg == AlgorithmRSA2048 {
				caValidity, validity = s.CAValidity, s.Validity
			}
			for _, w := range want {
				checkCert(t, h, w.base, w.ca, w.cn, w.org, w.usages, w.dns, w.ips, alg, caValidity, validity)
			}
			if m := h.get(t, pki+"/sa.key").mode; m != 0o600 {
				t.Errorf("sa.key mode %o", m)
			}
			sa, err := ParseKey(h.get(t, pki+"/sa.key").data)
			if err != nil {
				t.Fatal(err)
			}
			if k, ok := sa.(*rsa.PrivateKey); !ok || k.N.BitLen() != 2048 {
				t.Errorf("sa.key is %T, want RSA-2048", sa)
			}
			if !publicKeyEqual(h.get(t, pki+"/sa.pub").data, sa.Public()) {
				t.Errorf("sa.pub is not sa.key's public key")
			}
		})
	}
}

func checkCert(t *testing.T, h *memHost, base, caBase, cn string, org []string, usages []x509.ExtKeyUsage, dns, ips []string, alg string, caValidity, validity time.Duration) {
	t.Helper()
	if m := h.get(t, pki+"/"+base+".key").mode; m != 0o600 {
		t.Errorf("%s.key mode %o, want 600", base, m)
	}
	if m := h.get(t, pki+"/"+base+".crt").mode; m != 0o644 {
		t.Errorf("%s.crt mode %o, want 644", base, m)
	}
	kp := loadPair(t, h, base)
	c := kp.Cert
	if c.Subject.CommonName != cn || !slices.Equal(c.Subject.Organization, org) {
		t.Errorf("%s: subject CN=%q O=%q, want CN=%q O=%q", base, c.Subject.CommonName, c.Subject.Organization, cn, org)
	}
	if !slices.Equal(c.ExtKeyUsage, usages) {
		t.Errorf("%s: ext key usages %v, want %v", base, c.ExtKeyUsage, usages)
	}
	var gotIPs []string
	for _, ip := range c.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	if !slices.Equal(c.DNSNames, dns) || !slices.Equal(gotIPs, ips) {
		t.Errorf("%s: SANs DNS %v IP %v, want DNS %v IP %v", base, c.DNSNames, gotIPs, dns, ips)
	}
	ku := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	period := validity
	if caBase == "" {
		ku |= x509.KeyUsageCertSign
		period = caValidity
		if !c.IsCA || !c.BasicConstraintsValid {
			t.Errorf("%s is not a CA", base)
		}
	} else if c.IsCA {
		t.Errorf("%s is a CA", base)
	}
	if c.KeyUsage != ku {
		t.Errorf("%s: key usage %b, want %b", base, c.KeyUsage, ku)
	}
	if !c.NotBefore.Equal(testNow.Add(-5*time.Minute)) || !c.NotAfter.Equal(testNow.Add(period)) {
		t.Errorf("%s: valid %s to %s, want %s to %s", base, c.NotBefore, c.NotAfter, testNow.Add(-5*time.Minute), testNow.Add(period))
	}
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if alg != AlgorithmECDSAP256 || k.Curve != elliptic.P256() {
			t.Errorf("%s: ECDSA %s key, want %s", base, k.Curve.Params().Name, alg)
		}
	case *rsa.PublicKey:
		if alg != AlgorithmRSA2048 || k.N.BitLen() != 2048 {
			t.Errorf("%s: RSA-%d key, want %s", base, k.N.BitLen(), alg)
		}
	default:
		t.Errorf("%s: %T key", base, k)
	}
	if caBase == "" {
		caBase = base
	}
	roots := x509.NewCertPool()
	roots.AddCert(loadPair(t, h, caBase).Cert)
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("%s does not chain to %s: %v", base, caBase, err)
	}
}

func TestEnsureReusesOnRerun(t *testing.T) {
	h := newMemHost()
	s := testSpec()
	ensure(t, h, s)
	before := map[string]string{}
	for _, p := range h.paths() {
		before[p] = string(h.get(t, p).data)
	}
	writes := h.writes
	s.Now = func() time.Time { return testNow.Add(30 * 24 * time.Hour) }
	r := ensure(t, h, s)
	if len(r.Created()) != 0 || len(r.Reused()) != len(before) {
		t.Fatalf("re-run created %v, reused %d of %d", r.Created(), len(r.Reused()), len(before))
	}
	if h.writes != writes {
		t.Fatalf("re-run wrote %d files", h.writes-writes)
	}
	for p, b := range before {
		if string(h.get(t, p).data) != b {
			t.Errorf("%s changed", p)
		}
	}
}

func TestEnsureFillsInMissing(t *testing.T) {
	ctx := context.Background()
	h := newMemHost()
	s := testSpec()
	ensure(t, h, s)
	ca := string(h.get(t, pki+"/ca.crt").data)
	oldKey := loadPair(t, h, "apiserver").Key
	oldPeer := string(h.get(t, pki+"/etcd/peer.crt").data)
	h.Remove(ctx, pki+"/apiserver.crt")
	h.Remove(ctx, pki+"/etcd/peer.crt")
	h.Remove(ctx, pki+"/etcd/peer.key")
	h.Remove(ctx, pki+"/sa.pub")

	r := ensure(t, h, s)
	wantCreated := []string{pki + "/apiserver.crt", pki + "/etcd/peer.crt", pki + "/etcd/peer.key", pki + "/sa.pub"}
	if got := r.Created(); !slices.Equal(got, wantCreated) {
		t.Fatalf("created %v, want %v", got, wantCreated)
	}
	if !slices.Contains(r.Reused(), pki+"/apiserver.key") || len(r.Reused()) != 2*len(want)+2-len(wantCreated) {
		t.Fatalf("reused %v", r.Reused())
	}
	if string(h.get(t, pki+"/ca.crt").data) != ca {
		t.Fatal("ca.crt was replaced")
	}
	if !KeyMatches(loadPair(t, h, "apiserver").Cert, oldKey) {
		t.Fatal("the new apiserver.crt does not certify the kept apiserver.key")
	}
	if string(h.get(t, pki+"/etcd/peer.crt").data) == oldPeer {
		t.Fatal("etcd/peer.crt was not reissued")
	}
	checkCert(t, h, "etcd/peer", "etcd/ca", "cp-1", nil, want[7].usages, want[7].dns, want[7].ips, AlgorithmECDSAP256, DefaultCAValidity, DefaultValidity)
	sa, _ := ParseKey(h.get(t, pki+"/sa.key").data)
	if !publicKeyEqual(h.get(t, pki+"/sa.pub").data, sa.Public()) {
		t.Fatal("sa.pub does not match sa.key")
	}
}

func TestEnsureSANMismatch(t *testing.T) {
	h := newMemHost()
	s := testSpec()
	ensure(t, h, s)
	writes := h.writes
	s.ExtraSANs = []string{"api2.example.com", "203.0.113.7"}
	_, err := Ensure(context.Background(), h, s)
	if err == nil {
		t.Fatal("Ensure accepted an apiserver.crt whose SANs differ from the spec")
	}
	msg := err.Error()
	for _, part := range []string{
		"/etc/kubernetes/pki/apiserver.crt: SANs do not match the spec: missing [DNS:api2.example.com]",
		"remove /etc/kubernetes/pki/apiserver.crt and /etc/kubernetes/pki/apiserver.key and re-run `kforge init phase certs`",
	} {
		if !strings.Contains(msg, part) {
			t.Errorf("error lacks %q:\n%s", part, msg)
		}
	}
	if strings.Count(msg, "certs:") != 1 {
		t.Errorf("only apiserver.crt should be reported:\n%s", msg)
	}
	if h.writes != writes {
		t.Errorf("a failed Ensure wrote %d files", h.writes-writes)
	}

	// Names beyond the spec's (a renewal added them) are kept.
	s = testSpec()
	s.ExtraSANs = nil
	if _, err := Ensure(context.Background(), h, s); err != nil {
		t.Errorf("a certificate with more SANs than the spec: %v", err)
	}

	s = testSpec()
	s.NodeName = "cp-2"
	_, err = Ensure(context.Background(), h, s)
	if err == nil || !strings.Contains(err.Error(), `/etc/kubernetes/pki/etcd/server.crt: CN is "cp-1", want "cp-2"`) {
		t.Errorf("renamed node: %v", err)
	}
}

func TestEnsureCAMismatch(t *testing.T) {
	ctx := context.Background()
	a, b := newMemHost(), newMemHost()
	ensure(t, a, testSpec())
	ensure(t, b, testSpec())
	for _, f := range []string{"front-proxy-client.crt", "front-proxy-client.key"} {
		a.WriteFile(ctx, pki+"/"+f, b.get(t, pki+"/"+f).data, 0o600)
	}
	_, err := Ensure(ctx, a, testSpec())
	want := "certs: /etc/kubernetes/pki/front-proxy-client.crt is signed by a different CA than /etc/kubernetes/pki/front-proxy-ca.crt; " +
		"remove /etc/kubernetes/pki/front-proxy-client.crt and /etc/kubernetes/pki/front-proxy-client.key and re-run `kforge init phase certs`"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant\n%s", err, want)
	}

	// A fresh CA makes every certificate it would sign an error.
	a.Remove(ctx, pki+"/etcd/ca.crt")
	a.Remove(ctx, pki+"/etcd/ca.key")
	_, err = Ensure(ctx, a, testSpec())
	if err == nil || strings.Count(err.Error(), "signed by a different CA than /etc/kubernetes/pki/etcd/ca.crt") != 4 {
		t.Fatalf("replaced etcd CA: %v", err)
	}
	if _, err := a.Stat(ctx, pki+"/etcd/ca.crt"); err == nil {
		t.Fatal("a failed Ensure wrote etcd/ca.crt")
	}
}

func TestEnsureCAHalfMissing(t *testing.T) {
	ctx := context.Background()
	h := newMemHost()
	ensure(t, h, testSpec())
	h.Remove(ctx, pki+"/ca.key")
	_, err := Ensure(ctx, h, testSpec())
	if err == nil || !strings.Contains(err.Error(), "/etc/kubernetes/pki/ca.crt exists but its key /etc/kubernetes/pki/ca.key is missing") {
		t.Fatalf("missing ca.key: %v", err)
	}
}

func TestEnsureExpired(t *testing.T) {
	h := newMemHost()
	s := testSpec()
	ensure(t, h, s)
	s.Now = func() time.Time { return testNow.Add(400 * 24 * time.Hour) }
	_, err := Ensure(context.Background(), h, s)
	if err == nil {
		t.Fatal("expired leaves were reused")
	}
	if n := strings.Count(err.Error(), "expired on 2027-03-01T12:00:00Z"); n != 7 {
		t.Fatalf("%d expired leaves reported, want 7:\n%v", n, err)
	}
}

func TestSpecErrors(t *testing.T) {
	for name, mod := range map[string]func(*Spec){
		"no node":     func(s *Spec) { s.NodeName = "" },
		"no address":  func(s *Spec) { s.AdvertiseAddress = nil },
		"algorithm":   func(s *Spec) { s.Algorithm = "ed25519" },
		"subnet":      func(s *Spec) { s.ServiceSubnet = "10.96.0.0" },
		"bad SAN":     func(s *Spec) { s.ExtraSANs = []string{"not a name"} },
		"long leaves": func(s *Spec) { s.Validity = 20 * 365 * 24 * time.Hour },
	} {
		s := testSpec()
		mod(&s)
		h := newMemHost()
		if _, err := Ensure(context.Background(), h, s); err == nil {
			t.Errorf("%s: no error", name)
		}
		if h.writes != 0 {
			t.Errorf("%s: wrote %d files", name, h.writes)
		}
	}
}

func TestLoadCAIssuesClientCert(t *testing.T) {
	ctx := context.Background()
	h := newMemHost()
	ensure(t, h, testSpec())
	ca, err := LoadCA(ctx, h, pki, "ca", testNow)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(Request{CommonName: "system:node:w-1", Organization: []string{"system:nodes"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: time.Hour, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Verify(kp.Cert, testNow); err != nil {
		t.Fatal(err)
	}
	if err := ca.Verify(kp.Cert, testNow.Add(2*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired cert: %v", err)
	}
	other, _ := LoadCA(ctx, h, pki, "etcd/ca", testNow)
	if err := other.Verify(kp.Cert, testNow); err == nil {
		t.Fatal("etcd CA verified a cluster CA certificate")
	}
	if _, err := LoadCA(ctx, h, pki, "apiserver", testNow); err == nil {
		t.Fatal("apiserver.crt loaded as a CA")
	}
	if _, err := LoadCA(ctx, h, pki, "ca", testNow.Add(11*365*24*time.Hour)); err == nil {
		t.Fatal("expired CA loaded")
	}
}

func TestFirstServiceIPAndEndpointHost(t *testing.T) {
	for subnet, want := range map[string]string{
		"10.96.0.0/12": "10.96.0.1", "172.16.0.0/16,fd00::/108": "172.16.0.1", "fd00:10:96::/112": "fd00:10:96::1",
	} {
		ip, err := FirstServiceIP(subnet)
		if err != nil || ip.String() != want {
			t.Errorf("FirstServiceIP(%s) = %v, %v; want %s", subnet, ip, err, want)
		}
	}
	if _, err := FirstServiceIP("10.0.0.1/32"); err == nil {
		t.Error("a /32 has no service IP")
	}
	for ep, want := range map[string]string{
		"k8s.example.com": "k8s.example.com", "k8s.example.com:6443": "k8s.example.com",
		"10.0.0.1:443": "10.0.0.1", "[fd00::1]:6443": "fd00::1", "fd00::1": "fd00::1",
	} {
		if got := EndpointHost(ep); got != want {
			t.Errorf("EndpointHost(%s) = %s, want %s", ep, got, want)
		}
	}
}

func TestListLookup(t *testing.T) {
	if len(List()) != len(want) {
		t.Fatalf("List has %d certificates, want %d", len(List()), len(want))
	}
	for i, c := range List() {
		if c.BaseName != want[i].base {
			t.Errorf("List()[%d] = %s, want %s", i, c.BaseName, want[i].base)
		}
		if got, ok := Lookup(c.Name); !ok || got.BaseName != c.BaseName {
			t.Errorf("Lookup(%s)", c.Name)
		}
	}
}
