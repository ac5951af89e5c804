// Package discovery is how a joining node comes to trust a cluster, as
// kubeadm's token discovery does. It fetches the kube-public/cluster-info
// ConfigMap without trusting the API server yet, checks the bootstrap
// token's signature over the kubeconfig in it, checks the CA in that
// kubeconfig against the pinned hash of its public key, fetches
// cluster-info again over TLS verified with that CA and checks that both
// copies agree, and finally checks that the API server accepts the token.
//
// Every failure says which of these went wrong: the errors wrap one of the
// Err values below, and each message starts with that value's text. All of
// it is bounded by Options.Timeout; only the waits that a control plane
// still coming up would explain (no answer, no cluster-info yet, no
// signature yet) are retried until then.
package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/layout"
)

// What can go wrong, each with a message of its own.
var (
	ErrUnreachable    = errors.New("API server unreachable")
	ErrNoClusterInfo  = errors.New("no readable cluster-info")
	ErrUnknownToken   = errors.New("unknown or expired token")
	ErrWrongSecret    = errors.New("wrong token secret")
	ErrCAHash         = errors.New("wrong CA hash")
	ErrServerCert     = errors.New("API server certificate not from the cluster CA")
	ErrChanged        = errors.New("cluster-info changed between its two fetches")
	ErrTokenRejected  = errors.New("token rejected")
	ErrBadClusterInfo = errors.New("malformed cluster-info")
)

// Defaults of Options.
const (
	DefaultTimeout = 10 * time.Second
	// attemptTimeout bounds one request.
	attemptTimeout = 5 * time.Second
	retryEvery     = 500 * time.Millisecond
)

// Well-known names of token discovery.
const (
	ClusterInfoNamespace = "kube-public"
	ClusterInfoName      = "cluster-info"
	KubeconfigKey        = "kubeconfig"
	// SignaturePrefix and the token id name a signature in cluster-info.
	SignaturePrefix = "jws-kubeconfig-"
)

// Options say what to discover and how far to trust it.
type Options struct {
	// Endpoint is the API server as host:port; a missing port means 6443
	// and an https:// prefix is allowed.
	Endpoint string
	Token    Token
	// CACertHashes pin the cluster CA: a certificate of cluster-info's CA
	// bundle must have one of these hashes (sha256:<hex>, certs.CAHash).
	CACertHashes []string
	// UnsafeSkipCAVerification allows an empty CACertHashes: any CA that
	// the token's signature vouches for is trusted.
	UnsafeSkipCAVerification bool
	// Timeout bounds everything, retries included; DefaultTimeout when
	// zero.
	Timeout time.Duration
}

// Result is what the node may trust once discovery passed.
type Result struct {
	// Endpoint is the URL discovery talked to.
	Endpoint string
	// Server is the API server URL in cluster-info: where the kubelet
	// goes.
	Server string
	// CACert is the cluster's CA bundle (PEM) and CAHashes the hashes of
	// its certificates.
	CACert   []byte
	CAHashes []string
	// Kubeconfig is cluster-info's kubeconfig as fetched.
	Kubeconfig []byte
	// User and Groups are who the API server says the token is.
	User   string
	Groups []string
}

// Discover runs token discovery against o.Endpoint.
func Discover(ctx context.Context, o Options) (*Result, error) {
	url, err := EndpointURL(o.Endpoint)
	if err != nil {
		return nil, err
	}
	pins, err := checkPins(o)
	if err != nil {
		return nil, err
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()

	// 1. cluster-info, trusting nothing yet, signed with the token; only a
	// control plane that may still be coming up is asked again.
	var first *corev1.ConfigMap
	var last, fatal error
	err = wait.PollUntilContextCancel(ctx, retryEvery, true, func(ctx context.Context) (bool, error) {
		cm, err := fetchClusterInfo(ctx, url, nil)
		if err == nil {
			err = verifySignature(cm, o.Token, url)
		}
		switch {
		case err == nil:
			first = cm
			return true, nil
		case !retryable(err):
			fatal = err
			return false, err
		case ctx.Err() == nil || last == nil:
			// An attempt cut short by the deadline says less than the one before.
			last = err
		}
		return false, nil
	})
	if fatal != nil {
		return nil, fatal
	}
	if err != nil {
		return nil, fmt.Errorf("%w (tried for %s)", last, time.Since(start).Round(100*time.Millisecond))
	}
	kubeconfig := []byte(first.Data[KubeconfigKey])
	server, caPEM, err := parseClusterInfo(kubeconfig, url)
	if err != nil {
		return nil, err
	}

	// 2. The CA it names, against the pins.
	cas, hashes, err := parseCAs(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: the CA in cluster-info at %s: %v", ErrBadClusterInfo, url, err)
	}
	if len(pins) > 0 && !slices.ContainsFunc(hashes, func(h string) bool { return slices.Contains(pins, h) }) {
		return nil, fmt.Errorf("%w: the cluster CA at %s has %s, but --discovery-token-ca-cert-hash is %s. "+
			"Copy the hash kforge init printed (or compute it on the control plane from /etc/kubernetes/pki/ca.crt); "+
			"if it is right, something else answers at %s", ErrCAHash, url, strings.Join(hashes, ", "), strings.Join(pins, ", "), url)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}

	// 3. cluster-info again, over TLS verified with that CA.
	second, err := fetchClusterInfo(ctx, url, pool)
	if err != nil {
		return nil, err
	}
	if second.Data[KubeconfigKey] != string(kubeconfig) {
		return nil, fmt.Errorf("%w: the copy fetched over TLS verified with the cluster CA differs from the signed one; run the join again, and if it keeps failing something between this machine and %s rewrites answers", ErrChanged, url)
	}

	// 4. The token, against the API server the kubelet will use.
	user, groups, err := whoAmI(ctx, server, caPEM, o.Token)
	if err != nil {
		return nil, err
	}
	return &Result{
		Endpoint: url, Server: server, CACert: caPEM, CAHashes: hashes,
		Kubeconfig: kubeconfig, User: user, Groups: groups,
	}, nil
}

// EndpointURL turns host[:port] (or https://host[:port]) into the API
// server's URL.
func EndpointURL(endpoint string) (string, error) {
	e := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(endpoint), "https://"), "/")
	if e == "" || strings.Contains(e, "/") || strings.Contains(e, "://") {
		return "", fmt.Errorf("API server endpoint %q: want host:port, e.g. 10.0.0.5:6443", endpoint)
	}
	host, port, err := net.SplitHostPort(e)
	if err != nil {
		host, port = strings.Trim(e, "[]"), strconv.Itoa(layout.APIServerPort)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
		return "", fmt.Errorf("API server endpoint %q: want host:port, e.g. 10.0.0.5:6443", endpoint)
	}
	return "https://" + net.JoinHostPort(host, port), nil
}

func checkPins(o Options) ([]string, error) {
	var pins []string
	for _, h := range o.CACertHashes {
		p, err := ParseCAHash(h)
		if err != nil {
			return nil, err
		}
		pins = append(pins, p)
	}
	if len(pins) == 0 && !o.UnsafeSkipCAVerification {
		return nil, errors.New("no --discovery-token-ca-cert-hash: without it anyone answering at the endpoint could pose as the cluster. " +
			"Pass the hash kforge init printed, or --discovery-token-unsafe-skip-ca-verification to trust the token's signature alone")
	}
	return pins, nil
}

// retryable errors may go away while a control plane comes up.
func retryable(err error) bool {
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrNoClusterInfo) || errors.Is(err, ErrUnknownToken)
}

// fetchClusterInfo gets cluster-info anonymously. With a nil pool it
// verifies nothing about the server.
func fetchClusterInfo(ctx context.Context, url string, pool *x509.CertPool) (*corev1.ConfigMap, error) {
	tlsConfig := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if pool == nil {
		// Nothing is trusted yet: the token's signature vouches for what
		// comes back, and the second fetch verifies the server.
		tlsConfig.InsecureSkipVerify = true
	}
	tr := &http.Transport{TLSClientConfig: tlsConfig, Proxy: http.ProxyFromEnvironment}
	defer tr.CloseIdleConnections()
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	path := "/api/v1/namespaces/" + ClusterInfoNamespace + "/configmaps/" + ClusterInfoName
	req, err := http.NewRequestWithContext(actx, http.MethodGet, url+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kforge-join")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		var unknownCA x509.UnknownAuthorityError
		var hostErr x509.HostnameError
		var verifyErr *tls.CertificateVerificationError
		if pool != nil && (errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &verifyErr)) {
			return nil, fmt.Errorf("%w: %s does not present a certificate the pinned cluster CA verifies for that address (%v); "+
				"the endpoint must be a name or address in the API server's certificate", ErrServerCert, url, unwrapURLError(err))
		}
		return nil, fmt.Errorf("%w: %s: %v; check the address and port, and that this machine reaches it", ErrUnreachable, url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading cluster-info: %v", ErrUnreachable, url, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s has no %s/%s ConfigMap: kforge init's bootstrap-token phase has not run on this cluster", ErrNoClusterInfo, url, ClusterInfoNamespace, ClusterInfoName)
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, fmt.Errorf("%w: %s refuses anonymous reads of %s/%s (HTTP %d): the API server needs anonymous authentication and kforge init's bootstrap-token phase its RBAC", ErrNoClusterInfo, url, ClusterInfoNamespace, ClusterInfoName, resp.StatusCode)
	default:
		return nil, fmt.Errorf("%w: %s answers HTTP %d for %s/%s: %s", ErrUnreachable, url, resp.StatusCode, ClusterInfoNamespace, ClusterInfoName, snippet(body))
	}
	var cm corev1.ConfigMap
	if err := json.Unmarshal(body, &cm); err != nil || cm.Kind != "ConfigMap" {
		return nil, fmt.Errorf("%w: %s did not answer with a ConfigMap (%v): %s; is it a Kubernetes API server?", ErrBadClusterInfo, url, err, snippet(body))
	}
	if cm.Data[KubeconfigKey] == "" {
		return nil, fmt.Errorf("%w: %s/%s at %s has no %q key", ErrBadClusterInfo, ClusterInfoNamespace, ClusterInfoName, url, KubeconfigKey)
	}
	return &cm, nil
}

// verifySignature checks the token's signature over cluster-info's
// kubeconfig.
func verifySignature(cm *corev1.ConfigMap, t Token, url string) error {
	sig, ok := cm.Data[SignaturePrefix+t.ID]
	if !ok {
		others := 0
		for k := range cm.Data {
			if strings.HasPrefix(k, SignaturePrefix) {
				others++
			}
		}
		hint := fmt.Sprintf("though it is signed for %d other token(s)", others)
		if others == 0 {
			hint = "nor for any other token: is the controller manager running, with its bootstrapsigner controller?"
		}
		return fmt.Errorf("%w: cluster-info at %s has no signature for token id %s, %s. Either no such token exists in this cluster, "+
			"or it expired (tokens last 24h) and the control plane removed it. Re-run kforge init on the control plane: "+
			"it keeps the cluster as it is, makes a new token and prints a new join command", ErrUnknownToken, url, t.ID, hint)
	}
	if err := VerifyJWS(sig, []byte(cm.Data[KubeconfigKey]), t); err != nil {
		detail := ""
		if !errors.Is(err, errMismatch) {
			detail = " (" + err.Error() + ")"
		}
		return fmt.Errorf("%w: cluster-info at %s is signed for token id %s, but not with the secret given%s; check --token against the join command kforge init printed", ErrWrongSecret, url, t.ID, detail)
	}
	return nil
}

// parseClusterInfo returns the server and the CA of cluster-info's one
// cluster.
func parseClusterInfo(kubeconfig []byte, url string) (string, []byte, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return "", nil, fmt.Errorf("%w: the kubeconfig in cluster-info at %s: %v", ErrBadClusterInfo, url, err)
	}
	var cluster *clientcmdapi.Cluster
	for _, c := range cfg.Clusters {
		if cluster != nil {
			return "", nil, fmt.Errorf("%w: the kubeconfig in cluster-info at %s has %d clusters, want one", ErrBadClusterInfo, url, len(cfg.Clusters))
		}
		cluster = c
	}
	if cluster == nil || cluster.Server == "" || len(cluster.CertificateAuthorityData) == 0 {
		return "", nil, fmt.Errorf("%w: the kubeconfig in cluster-info at %s names no cluster with a server and an inline CA", ErrBadClusterInfo, url)
	}
	return cluster.Server, cluster.CertificateAuthorityData, nil
}

// parseCAs returns the certificates of a PEM bundle and their hashes.
func parseCAs(caPEM []byte) ([]*x509.Certificate, []string, error) {
	var cas []*x509.Certificate
	var hashes []string
	for rest := caPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, err
		}
		cas = append(cas, c)
		hashes = append(hashes, certs.CAHashOf(c))
	}
	if len(cas) == 0 {
		return nil, nil, errors.New("no PEM certificate")
	}
	return cas, hashes, nil
}

// CAHashes returns the CA hash of every certificate of a PEM bundle.
func CAHashes(caPEM []byte) ([]string, error) {
	_, hashes, err := parseCAs(caPEM)
	return hashes, err
}

func unwrapURLError(err error) error {
	var ue *neturl.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
