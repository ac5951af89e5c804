package certs

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/cloudflare/cfssl/config"
	"github.com/cloudflare/cfssl/csr"
	"github.com/cloudflare/cfssl/initca"
	"github.com/cloudflare/cfssl/signer"
	"github.com/cloudflare/cfssl/signer/local"

	"kforge.dev/kforge/host"
)

// KeyPair is a certificate and its private key, parsed and PEM-encoded.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// CA is a key pair that signs certificates.
type CA struct {
	KeyPair
}

// Request describes a certificate to issue.
type Request struct {
	CommonName   string
	Organization []string
	// Usages are the extended key usages; empty for a CA.
	Usages   []x509.ExtKeyUsage
	AltNames AltNames
	// Algorithm of a new key; ignored when Key is set.
	Algorithm string
	// Key, when set, is certified instead of a new key.
	Key crypto.Signer
	// Validity is the lifetime from Now. A leaf never outlives its CA.
	Validity time.Duration
	Now      time.Time
}

// kubeadm's key usages: digital signature and key encipherment on every
// certificate, cert sign on CAs.
var (
	leafUsage = []string{"digital signature", "key encipherment"}
	caUsage   = []string{"digital signature", "key encipherment", "cert sign"}
)

func (r Request) csr() *csr.CertificateRequest {
	req := &csr.CertificateRequest{CN: r.CommonName, Hosts: r.AltNames.hosts()}
	for _, o := range r.Organization {
		req.Names = append(req.Names, csr.Name{O: o})
	}
	return req
}

func (a AltNames) hosts() []string {
	var out []string
	out = append(out, a.DNSNames...)
	for _, ip := range a.IPs {
		out = append(out, ip.String())
	}
	return out
}

func (r Request) key() (crypto.Signer, []byte, error) {
	if r.Key == nil {
		return NewKey(r.Algorithm)
	}
	keyPEM, err := EncodeKey(r.Key)
	return r.Key, keyPEM, err
}

// NewCA creates a self-signed CA from r (CN, O, Algorithm, Validity, Now).
func NewCA(r Request) (*CA, error) {
	key, keyPEM, err := r.key()
	if err != nil {
		return nil, err
	}
	csrPEM, err := csr.Generate(key, r.csr())
	if err != nil {
		return nil, fmt.Errorf("certs: CSR for CA %s: %w", r.CommonName, err)
	}
	policy := initca.CAPolicy()
	policy.Default.Usage = caUsage
	policy.Default.Expiry = r.Validity
	s, err := local.NewSigner(key, nil, signer.DefaultSigAlgo(key), policy)
	if err != nil {
		return nil, fmt.Errorf("certs: CA %s: %w", r.CommonName, err)
	}
	certPEM, err := s.Sign(signer.SignRequest{
		Request:   string(csrPEM),
		NotBefore: r.Now.Add(-Backdate),
		NotAfter:  r.Now.Add(r.Validity),
	})
	if err != nil {
		return nil, fmt.Errorf("certs: sign CA %s: %w", r.CommonName, err)
	}
	kp, err := ParseKeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &CA{*kp}, nil
}

// Issue signs a new leaf certificate for r.
func (ca *CA) Issue(r Request) (*KeyPair, error) {
	key, keyPEM, err := r.key()
	if err != nil {
		return nil, err
	}
	req := r.csr()
	csrPEM, err := csr.Generate(key, req)
	if err != nil {
		return nil, fmt.Errorf("certs: CSR for %s: %w", r.CommonName, err)
	}
	usage := append([]string(nil), leafUsage...)
	for _, u := range r.Usages {
		name, ok := extKeyUsageName[u]
		if !ok {
			return nil, fmt.Errorf("certs: %s: unsupported extended key usage %d", r.CommonName, u)
		}
		usage = append(usage, name)
	}
	policy := &config.Signing{Default: &config.SigningProfile{Usage: usage, Expiry: r.Validity}}
	s, err := local.NewSigner(ca.Key, ca.Cert, signer.DefaultSigAlgo(ca.Key), policy)
	if err != nil {
		return nil, fmt.Errorf("certs: signer for %s: %w", r.CommonName, err)
	}
	notAfter := r.Now.Add(r.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	certPEM, err := s.Sign(signer.SignRequest{
		Request:   string(csrPEM),
		Hosts:     req.Hosts,
		NotBefore: r.Now.Add(-Backdate),
		NotAfter:  notAfter,
	})
	if err != nil {
		return nil, fmt.Errorf("certs: sign %s: %w", r.CommonName, err)
	}
	return ParseKeyPair(certPEM, keyPEM)
}

var extKeyUsageName = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageServerAuth: "server auth",
	x509.ExtKeyUsageClientAuth: "client auth",
}

// ParseKeyPair parses a PEM certificate and private key and checks that they
// belong together.
func ParseKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if !KeyMatches(cert, key) {
		return nil, fmt.Errorf("the private key does not match the certificate")
	}
	return &KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// LoadCA reads the CA baseName.crt and baseName.key (baseName relative to
// dir, "ca" or "etcd/ca") from h and checks that it can sign at now.
func LoadCA(ctx context.Context, h host.Host, dir, baseName string, now time.Time) (*CA, error) {
	certPath, keyPath := dir+"/"+baseName+".crt", dir+"/"+baseName+".key"
	certPEM, err := h.ReadFile(ctx, certPath)
	if err != nil {
		return nil, fmt.Errorf("certs: read CA: %w", err)
	}
	keyPEM, err := h.ReadFile(ctx, keyPath)
	if err != nil {
		return nil, fmt.Errorf("certs: read CA key: %w", err)
	}
	kp, err := ParseKeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: %s, %s: %w", certPath, keyPath, err)
	}
	if err := checkCA(kp.Cert, now); err != nil {
		return nil, fmt.Errorf("certs: %s: %w", certPath, err)
	}
	return &CA{*kp}, nil
}

func checkCA(cert *x509.Certificate, now time.Time) error {
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("is not a CA certificate")
	}
	if err := CheckPeriod(cert, now); err != nil {
		return err
	}
	return cert.CheckSignatureFrom(cert)
}

// CheckPeriod returns an error when cert is not valid at now.
func CheckPeriod(cert *x509.Certificate, now time.Time) error {
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("is not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(cert.NotAfter) {
		return fmt.Errorf("expired on %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Verify checks that cert was signed by this CA and is valid at now.
func (ca *CA) Verify(cert *x509.Certificate, now time.Time) error {
	if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
		return fmt.Errorf("is not signed by the CA %q: %w", ca.Cert.Subject.CommonName, err)
	}
	return CheckPeriod(cert, now)
}

// Diff lists how cert differs from r in subject, extended key usages and
// SANs; nothing when it matches. SANs beyond r's are accepted: the
// certificate still names everything the cluster needs, and `kforge certs
// renew --apiserver-cert-extra-sans` adds names that must stay.
func (r Request) Diff(cert *x509.Certificate) []string {
	var d []string
	if cert.Subject.CommonName != r.CommonName {
		d = append(d, fmt.Sprintf("CN is %q, want %q", cert.Subject.CommonName, r.CommonName))
	}
	if !sameSet(cert.Subject.Organization, r.Organization) {
		d = append(d, fmt.Sprintf("O is %q, want %q", cert.Subject.Organization, r.Organization))
	}
	var have, want []string
	for _, u := range cert.ExtKeyUsage {
		have = append(have, fmt.Sprint(u))
	}
	for _, u := range r.Usages {
		want = append(want, fmt.Sprint(u))
	}
	if !sameSet(have, want) {
		d = append(d, fmt.Sprintf("extended key usages are %v, want %v", cert.ExtKeyUsage, r.Usages))
	}
	got := AltNames{DNSNames: cert.DNSNames, IPs: cert.IPAddresses}.Strings()
	wantSANs := r.AltNames.Strings()
	if missing := minus(wantSANs, got); len(missing) > 0 {
		d = append(d, fmt.Sprintf("SANs do not match the spec: missing %v", missing))
	}
	return d
}

func sameSet(a, b []string) bool { return len(minus(a, b)) == 0 && len(minus(b, a)) == 0 }

// minus returns the elements of a that are not in b.
func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}
