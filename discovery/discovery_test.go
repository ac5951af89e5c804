package discovery

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kforge.dev/kforge/certs"
)

var (
	goodToken  = Token{ID: "abcdef", Secret: "0123456789abcdef"}
	otherToken = Token{ID: "zyxwvu", Secret: "fedcba9876543210"}
)

// fakeAPIServer serves cluster-info, signed for the given tokens, and
// self-subject reviews for the tokens it accepts.
type fakeAPIServer struct {
	srv      *httptest.Server
	caPEM    []byte
	signers  []Token
	accepted []Token
	// kubeconfig, when set, replaces cluster-info's kubeconfig; second
	// replaces it from the second fetch on.
	kubeconfig, second string
	fetches            atomic.Int32
}

func newFakeAPIServer(t *testing.T) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{signers: []Token{goodToken, otherToken}, accepted: []Token{goodToken, otherToken}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	// A client that gives up on the server's certificate is expected.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	return f
}

func (f *fakeAPIServer) endpoint() string { return strings.TrimPrefix(f.srv.URL, "https://") }

func (f *fakeAPIServer) pin() string { return certs.CAHashOf(f.srv.Certificate()) }

func clusterInfoKubeconfig(server string, caPEM []byte) string {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[""] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	b, _ := clientcmd.Write(*cfg)
	return string(b)
}

func (f *fakeAPIServer) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/v1/namespaces/kube-public/configmaps/cluster-info":
		n := f.fetches.Add(1)
		kc := clusterInfoKubeconfig(f.srv.URL, f.caPEM)
		if f.kubeconfig != "" {
			kc = f.kubeconfig
		}
		data := map[string]string{"kubeconfig": kc}
		for _, t := range f.signers {
			data["jws-kubeconfig-"+t.ID] = SignJWS([]byte(kc), t)
		}
		if n > 1 && f.second != "" {
			data["kubeconfig"] = f.second
		}
		json.NewEncoder(w).Encode(&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"},
			Data:       data,
		})
	case "/apis/authentication.k8s.io/v1/selfsubjectreviews":
		for _, t := range f.accepted {
			if r.Header.Get("Authorization") == "Bearer "+t.String() {
				w.WriteHeader(http.StatusCreated)
				json.NewEncoder(w).Encode(map[string]any{
					"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
					"status": map[string]any{"userInfo": map[string]any{
						"username": "system:bootstrap:" + t.ID,
						"groups":   []string{"system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token", "system:authenticated"},
					}},
				})
				return
			}
		}
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401, "message": "Unauthorized"})
	default:
		http.NotFound(w, r)
	}
}

func discover(t *testing.T, o Options) (*Result, error, time.Duration) {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	start := time.Now()
	r, err := Discover(context.Background(), o)
	return r, err, time.Since(start)
}

func TestDiscoverTrustsASignedPinnedCA(t *testing.T) {
	f := newFakeAPIServer(t)
	r, err, _ := discover(t, Options{Endpoint: f.endpoint(), Token: goodToken, CACertHashes: []string{strings.ToUpper(f.pin())}})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.CACert) != string(f.caPEM) || r.Server != f.srv.URL || r.CAHashes[0] != f.pin() {
		t.Errorf("result %+v", r)
	}
	if r.User != "system:bootstrap:abcdef" || len(r.Groups) != 3 {
		t.Errorf("the token is %s %v", r.User, r.Groups)
	}
	if n := f.fetches.Load(); n != 2 {
		t.Errorf("cluster-info fetched %d times, want 2 (unverified, then over verified TLS)", n)
	}
	kc, err := BootstrapKubeconfig(r, goodToken)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(kc)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != f.srv.URL || rc.BearerToken != "abcdef.0123456789abcdef" || string(rc.CAData) != string(f.caPEM) {
		t.Errorf("bootstrap kubeconfig:\n%s", kc)
	}
}

// TestDiscoverFailures: each way discovery fails has its own error and
// message, and none takes longer than its bound.
func TestDiscoverFailures(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	otherCA := newCA(t)
	for _, tc := range []struct {
		name   string
		setup  func(f *fakeAPIServer, o *Options)
		want   error
		says   []string
		within time.Duration
	}{
		{"wrong CA hash", func(f *fakeAPIServer, o *Options) {
			o.CACertHashes = []string{"sha256:" + strings.Repeat("ab", 32)}
		}, ErrCAHash, []string{"wrong CA hash: ", "sha256:" + strings.Repeat("ab", 32), "has sha256:"}, time.Second},
		{"wrong token secret", func(f *fakeAPIServer, o *Options) {
			o.Token.Secret = "aaaaaaaaaaaaaaaa"
		}, ErrWrongSecret, []string{"wrong token secret: ", "signed for token id abcdef, but not with the secret given"}, time.Second},
		{"unknown token id", func(f *fakeAPIServer, o *Options) {
			o.Token.ID = "qqqqqq"
		}, ErrUnknownToken, []string{"unknown or expired token: ", "no signature for token id qqqqqq", "though it is signed for 2 other token(s)", "tried for"}, 2 * time.Second},
		{"no signatures at all", func(f *fakeAPIServer, o *Options) {
			f.signers = nil
		}, ErrUnknownToken, []string{"nor for any other token", "bootstrapsigner"}, 2 * time.Second},
		{"unreachable", func(f *fakeAPIServer, o *Options) {
			o.Endpoint = closed
		}, ErrUnreachable, []string{"API server unreachable: https://" + closed, "connection refused", "tried for"}, 2 * time.Second},
		{"token no longer authenticates", func(f *fakeAPIServer, o *Options) {
			f.accepted = []Token{otherToken}
		}, ErrTokenRejected, []string{"token rejected: ", "does not accept token id abcdef (HTTP 401)", "expired"}, time.Second},
		{"cluster-info changes", func(f *fakeAPIServer, o *Options) {
			f.second = "apiVersion: v1\nkind: Config\n"
		}, ErrChanged, []string{"cluster-info changed between its two fetches"}, time.Second},
		{"server certificate from another CA", func(f *fakeAPIServer, o *Options) {
			// The token vouches for another CA (as a server in the middle
			// that knows the token could make it do) and the pin matches
			// it, but the API server's certificate is not from it.
			f.kubeconfig = clusterInfoKubeconfig(f.srv.URL, otherCA.pem)
			o.CACertHashes = []string{certs.CAHashOf(otherCA.cert)}
		}, ErrServerCert, []string{"API server certificate not from the cluster CA"}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPIServer(t)
			o := Options{Endpoint: f.endpoint(), Token: goodToken, CACertHashes: []string{f.pin()}, Timeout: 1500 * time.Millisecond}
			tc.setup(f, &o)
			_, err, took := discover(t, o)
			t.Logf("after %s: %v", took.Round(time.Millisecond), err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q lacks %q", err, s)
				}
			}
			if !strings.HasPrefix(err.Error(), tc.want.Error()+": ") {
				t.Errorf("%q does not start with %q", err, tc.want)
			}
			if took > tc.within {
				t.Errorf("took %s, want at most %s", took, tc.within)
			}
		})
	}
}

func TestDiscoverNeedsAPinUnlessUnsafe(t *testing.T) {
	f := newFakeAPIServer(t)
	_, err, _ := discover(t, Options{Endpoint: f.endpoint(), Token: goodToken})
	if err == nil || !strings.Contains(err.Error(), "--discovery-token-unsafe-skip-ca-verification") || f.fetches.Load() != 0 {
		t.Fatalf("no pin: %v (after %d fetches)", err, f.fetches.Load())
	}
	if _, err, _ := discover(t, Options{Endpoint: f.endpoint(), Token: goodToken, UnsafeSkipCAVerification: true}); err != nil {
		t.Fatalf("unsafe skip: %v", err)
	}
	_, err, _ = discover(t, Options{Endpoint: f.endpoint(), Token: goodToken, CACertHashes: []string{"md5:abc"}})
	if err == nil || !strings.Contains(err.Error(), "sha256:<64 hex digits>") {
		t.Fatalf("a malformed pin: %v", err)
	}
}

func TestEndpointURL(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.5:6443":          "https://10.0.0.5:6443",
		"10.0.0.5":               "https://10.0.0.5:6443",
		"https://cp.example:443": "https://cp.example:443",
		"[fd00::1]:6443":         "https://[fd00::1]:6443",
		"fd00::1":                "https://[fd00::1]:6443",
		"":                       "",
		"http://10.0.0.5:6443":   "",
		"10.0.0.5:99999":         "",
		"10.0.0.5:6443/api":      "",
	} {
		got, err := EndpointURL(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("EndpointURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseToken(t *testing.T) {
	if tok, err := ParseToken(" abcdef.0123456789abcdef\n"); err != nil || tok != goodToken {
		t.Errorf("ParseToken: %v %v", tok, err)
	}
	for _, bad := range []string{"", "abcdef", "ABCDEF.0123456789abcdef", "abcdef.0123456789abcde", "abcdef:0123456789abcdef"} {
		_, err := ParseToken(bad)
		if err == nil {
			t.Errorf("ParseToken(%q) passed", bad)
		} else if strings.Contains(err.Error(), "0123456789") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}

func TestJWS(t *testing.T) {
	payload := []byte("apiVersion: v1\nkind: Config\n")
	sig := SignJWS(payload, goodToken)
	if err := VerifyJWS(sig, payload, goodToken); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		sig     string
		payload []byte
		token   Token
		want    string
	}{
		"other payload":    {sig, []byte("x"), goodToken, "does not match"},
		"other secret":     {sig, payload, Token{ID: "abcdef", Secret: "x"}, "does not match"},
		"other kid":        {sig, payload, Token{ID: "zzzzzz", Secret: goodToken.Secret}, `names key "abcdef"`},
		"attached":         {strings.Replace(sig, "..", ".cGF5bG9hZA.", 1), payload, goodToken, "not a detached JWS"},
		"alg none":         {"eyJhbGciOiJub25lIn0..", payload, goodToken, "not a detached JWS"},
		"alg none, signed": {"eyJhbGciOiJub25lIn0..c2ln", payload, goodToken, `uses "none"`},
	} {
		if err := VerifyJWS(tc.sig, tc.payload, tc.token); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

type testCA struct {
	cert *x509.Certificate
	pem  []byte
}

func newCA(t *testing.T) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCA{cert: c, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}
