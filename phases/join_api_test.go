package phases

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/facts"
	"kforge.dev/kforge/internal/controlplanetest"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/reporter"
	"kforge.dev/kforge/services"
	"kforge.dev/kforge/templates"
)

// TestJoinAgainstARealControlPlane runs discovery, the TLS bootstrap's CSR
// and the join phases (on a fake worker host) against the real etcd, API
// server, controller manager and scheduler started with kforge's flags,
// after init's upload-config and bootstrap-token phases.
func TestJoinAgainstARealControlPlane(t *testing.T) {
	c := config.Default()
	c.CNI.Plugin = "kube-router"
	cp := controlplanetest.Start(t, controlplanetest.Options{Cluster: c})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	endpoint := strings.TrimPrefix(cp.Server, "https://")
	d := &Data{
		Config:   Config{Cluster: cp.Cluster, Host: cp.Host, Out: reporter.Discard(), Now: time.Now, KforgeBinary: fakeKforgeBinary(t)},
		Services: services.For(cp.Host, facts.Facts{}, ""),
		NodeName: cp.NodeName, AdvertiseAddress: cp.AdvertiseAddress, Endpoint: endpoint,
	}
	super := cp.Client(t, "super-admin").Kube
	kl, err := templates.RenderKubelet(templates.Kubelet{NodeName: cp.NodeName, CgroupDriver: templates.CgroupDriverCgroupfs, ClusterDNS: []string{"10.96.0.10"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Host.WriteFile(ctx, kl[0].Path, kl[0].Data, kl[0].Mode); err != nil {
		t.Fatal(err)
	}
	if err := uploadConfig(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := bootstrapToken(ctx, d); err != nil {
		t.Fatal(err)
	}
	stored, _ := cp.Host.ReadFile(ctx, layout.BootstrapToken)
	token, err := discovery.ParseToken(string(stored))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := cp.Host.ReadFile(ctx, layout.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pins, _ := discovery.CAHashes(caPEM)
	good := discovery.Options{Endpoint: endpoint, Token: token, CACertHashes: pins}

	var result *discovery.Result
	t.Run("a good token and hash", func(t *testing.T) {
		o := good
		// The bootstrapsigner signs cluster-info once the controller
		// manager leads, a few seconds after it starts.
		o.Timeout = 90 * time.Second
		start := time.Now()
		r, err := discovery.Discover(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("discovery passed after %s", time.Since(start).Round(time.Millisecond))
		if string(r.CACert) != string(caPEM) || r.Server != cp.Server || r.User != "system:bootstrap:"+token.ID {
			t.Errorf("result: server %s, user %s, CA:\n%s", r.Server, r.User, r.CACert)
		}
		result = r
	})
	if result == nil {
		t.Fatal("discovery did not pass: nothing else can be checked")
	}

	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	expired := discovery.Token{ID: "expird", Secret: "0123456789abcdef"}
	noAuth := discovery.Token{ID: "noauth", Secret: "0123456789abcdef"}
	createToken(ctx, t, super, expired, time.Now().Add(-time.Minute), true)
	createToken(ctx, t, super, noAuth, time.Now().Add(time.Hour), false)
	waitSigned(ctx, t, cp.Server, caPEM, noAuth.ID)

	for _, tc := range []struct {
		name   string
		change func(o *discovery.Options)
		want   error
		says   string
	}{
		{"wrong CA hash", func(o *discovery.Options) { o.CACertHashes = []string{"sha256:" + strings.Repeat("0", 64)} }, discovery.ErrCAHash, pins[0]},
		{"wrong token secret", func(o *discovery.Options) { o.Token.Secret = strings.Repeat("x", 16) }, discovery.ErrWrongSecret, "signed for token id " + token.ID},
		{"unknown token id", func(o *discovery.Options) { o.Token.ID = "nosuch" }, discovery.ErrUnknownToken, "no signature for token id nosuch"},
		{"expired token", func(o *discovery.Options) { o.Token = expired }, discovery.ErrUnknownToken, "expired"},
		{"token not for authentication", func(o *discovery.Options) { o.Token = noAuth }, discovery.ErrTokenRejected, "does not accept token id noauth (HTTP 401)"},
		{"unreachable endpoint", func(o *discovery.Options) { o.Endpoint = closed }, discovery.ErrUnreachable, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			o.Timeout = 3 * time.Second
			tc.change(&o)
			start := time.Now()
			_, err := discovery.Discover(ctx, o)
			took := time.Since(start)
			t.Logf("after %s: %v", took.Round(time.Millisecond), err)
			if !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), tc.want.Error()+": ") || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want %v saying %q", err, tc.want, tc.says)
			}
			if took > 5*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
	t.Run("the control plane removes an expired token", func(t *testing.T) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := super.CoreV1().Secrets("kube-system").Get(ctx, bootstrapTokenPrefix+expired.ID, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the tokencleaner left the expired token's Secret: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("TLS bootstrap: the token's CSR is approved and signed", func(t *testing.T) {
		kc, err := discovery.BootstrapKubeconfig(result, token)
		if err != nil {
			t.Fatal(err)
		}
		bc, err := kube.New(kc, "")
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := bootstrapCSR(ctx, t, bc.Kube, "w9")
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("the issued certificate does not verify as a client certificate of the cluster CA: %v", err)
		}
		if cert.Subject.CommonName != "system:node:w9" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != NodesGroup {
			t.Errorf("issued for %s", cert.Subject)
		}
	})

	t.Run("join phases on a worker", func(t *testing.T) {
		w, h := fakeNode(t, ciHost)
		w.NodeName, w.AdvertiseAddress = "w1", "127.0.0.2"
		w.Discovery = &discovery.Options{Endpoint: endpoint, Token: token, CACertHashes: pins, Timeout: 30 * time.Second}
		if err := Execute(ctx, Join(), w, Options{Skip: []string{"wait"}}); err != nil {
			t.Fatal(err)
		}
		if w.Cluster.CNI.Plugin != "kube-router" || w.Cluster.KubernetesVersion != cp.Cluster.KubernetesVersion || w.Endpoint != endpoint {
			t.Errorf("the worker took cluster %+v, endpoint %s", w.Cluster, w.Endpoint)
		}
		files := h.Files()
		if string(files[layout.CACert].Data) != string(caPEM) {
			t.Error("the worker's ca.crt is not the cluster CA")
		}
		if _, ok := files[layout.BootstrapKubeletConf]; !ok {
			t.Fatal("no bootstrap kubeconfig")
		}
		// What the kubelet would do: bootstrap and register.
		h.WriteFile(ctx, layout.KubeletConf, []byte("written by the kubelet"), 0o600)
		h.WriteFile(ctx, layout.KubeletServingCert, []byte("written by the kubelet"), 0o600)
		registerNode(ctx, t, super, "w1", corev1.ConditionTrue)
		if err := Execute(ctx, Join(), w, Options{Only: "wait"}); err != nil {
			t.Fatal(err)
		}
		if _, ok := h.Files()[layout.BootstrapKubeletConf]; ok {
			t.Error("the bootstrap kubeconfig (the token) is left after the join")
		}

		// A second machine may not take the name of a Ready node.
		w2, h2 := fakeNode(t, ciHost)
		w2.NodeName = "w1"
		w2.Discovery = w.Discovery
		err := Execute(ctx, Join(), w2, Options{})
		if err == nil || !strings.Contains(err.Error(), "phase discovery") || !strings.Contains(err.Error(), "a Node named w1 is already in the cluster and Ready") {
			t.Errorf("a second w1: %v", err)
		}
		if len(h2.Paths()) != 0 || w2.Results.Wrote {
			t.Errorf("a refused join wrote %v", h2.Paths())
		}
	})

	t.Run("addons with kube-router", func(t *testing.T) {
		first, err := d.applyAddons(ctx)
		if err != nil {
			t.Fatal(err)
		}
		second, err := d.applyAddons(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range second {
			if a.Changed {
				t.Errorf("applying the addons again changed %s", a)
			}
		}
		if len(second) != len(first) {
			t.Errorf("applied %d objects, then %d", len(first), len(second))
		}
		ds, err := super.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-router", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := ds.Spec.Template.Spec.Containers[0].Image; img != "docker.io/cloudnativelabs/kube-router:v2.1.0" {
			t.Errorf("kube-router image %s", img)
		}
		for _, a := range [][2]string{{"watch", "nodes"}, {"list", "pods"}, {"watch", "namespaces"}} {
			canISA(ctx, t, super, "kube-system", "kube-router", a[0], a[1], "")
		}
		canISA(ctx, t, super, "kube-system", "kube-router", "watch", "networkpolicies", "networking.k8s.io")
		canISA(ctx, t, super, "kube-system", "kube-router", "list", "endpointslices", "discovery.k8s.io")
	})

	t.Run("kubelet serving certificates: kforge's approver, with its own RBAC, approves a node's own request and denies the rest", func(t *testing.T) {
		servingApprover(ctx, t, cp, super, result, token, caPEM)
	})

	t.Run("a wait for the TLS bootstrap names the CSR's state", func(t *testing.T) {
		w, _ := fakeNode(t, ciHost)
		w.NodeName = "w9"
		w.Discovery, w.Results.Discovered = &good, result
		c, err := w.tokenClient(result)
		if err != nil {
			t.Fatal(err)
		}
		// A few seconds: under load one second may end before a first
		// answer, and the message names what was last seen.
		err = w.waitTLSBootstrap(ctx, c, 3*time.Second)
		var we *kube.WaitError
		if !errors.As(err, &we) || !strings.Contains(err.Error(), "TLS bootstrap") || !strings.Contains(err.Error(), "is signed, but the kubelet has not written") {
			t.Errorf("waiting without a kubelet: %v", err)
		}
		err = w.waitNodeReadyAsToken(ctx, c, 3*time.Second)
		if err == nil || !strings.Contains(err.Error(), "node w9 not ready after") || !strings.Contains(err.Error(), "has not registered") {
			t.Errorf("waiting for an unregistered node: %v", err)
		}
	})
}

// createToken makes a bootstrap token Secret as kforge init does, with
// the given expiry, for signing and, when auth, for authentication.
func createToken(ctx context.Context, t *testing.T, c kubernetes.Interface, tok discovery.Token, exp time.Time, auth bool) {
	t.Helper()
	_, err := c.CoreV1().Secrets("kube-system").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrapTokenPrefix + tok.ID, Namespace: "kube-system"},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"token-id": tok.ID, "token-secret": tok.Secret, "expiration": exp.UTC().Format(time.RFC3339),
			"usage-bootstrap-signing": "true", "usage-bootstrap-authentication": map[bool]string{true: "true", false: "false"}[auth],
			"auth-extra-groups": templates.DefaultBootstrapGroup,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// waitSigned waits until the bootstrapsigner signed cluster-info for id.
func waitSigned(ctx context.Context, t *testing.T, server string, caPEM []byte, id string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if cm := anonymousClusterInfo(ctx, t, server, caPEM); cm.Data[discovery.SignaturePrefix+id] != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster-info is not signed for token %s after 60s", id)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// bootstrapCSR sends the CSR a kubelet sends on its first start and waits
// for the controller manager to approve and sign it.
func bootstrapCSR(ctx context.Context, t *testing.T, c kubernetes.Interface, node string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:" + node, Organization: []string{NodesGroup}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := c.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-csr-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the token may not create the kubelet's CSR: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := c.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Status.Certificate) > 0 {
			approved := false
			for _, cond := range got.Status.Conditions {
				approved = approved || (cond.Type == certificatesv1.CertificateApproved && cond.Reason == "AutoApproved")
			}
			if !approved {
				t.Errorf("CSR %s was not auto-approved: %+v", got.Name, got.Status.Conditions)
			}
			b, _ := pem.Decode(got.Status.Certificate)
			if b == nil {
				t.Fatalf("CSR %s: the certificate is not PEM", got.Name)
			}
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			return cert, key
		}
		if time.Now().After(deadline) {
			t.Fatalf("CSR %s not signed after 60s: %+v", got.Name, got.Status.Conditions)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
