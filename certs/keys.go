package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/cloudflare/cfssl/csr"
	"github.com/cloudflare/cfssl/helpers"
)

// keyRequest maps a kforge key algorithm to cfssl's.
func keyRequest(alg string) (*csr.KeyRequest, error) {
	switch alg {
	case AlgorithmECDSAP256, "":
		return &csr.KeyRequest{A: "ecdsa", S: 256}, nil
	case AlgorithmRSA2048:
		return &csr.KeyRequest{A: "rsa", S: 2048}, nil
	}
	return nil, checkAlgorithm(alg)
}

// NewKey generates a private key with alg and returns it with its PEM
// encoding (PKCS#1 "RSA PRIVATE KEY" or SEC 1 "EC PRIVATE KEY", as kubeadm
// writes them).
func NewKey(alg string) (crypto.Signer, []byte, error) {
	kr, err := keyRequest(alg)
	if err != nil {
		return nil, nil, err
	}
	priv, err := kr.Generate()
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate %s key: %w", alg, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("certs: generated %T is not a signer", priv)
	}
	keyPEM, err := EncodeKey(signer)
	return signer, keyPEM, err
}

// EncodeKey PEM-encodes an RSA or ECDSA private key.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	}
	return nil, fmt.Errorf("certs: unsupported key type %T", key)
}

// ParseKey parses a PEM private key (PKCS#1, PKCS#8 or SEC 1).
func ParseKey(keyPEM []byte) (crypto.Signer, error) {
	k, err := helpers.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("not a PEM private key: %w", err)
	}
	return k, nil
}

// ParseCert parses the first certificate of a PEM bundle.
func ParseCert(certPEM []byte) (*x509.Certificate, error) {
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// EncodePublicKey PEM-encodes a public key as PKIX "PUBLIC KEY".
func EncodePublicKey(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// KeyMatches reports whether key is the private half of cert's public key.
func KeyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// CAHash returns kubeadm's discovery-token-ca-cert-hash of a CA
// certificate (PEM): "sha256:" and the hex SHA-256 of its
// SubjectPublicKeyInfo.
func CAHash(caPEM []byte) (string, error) {
	cert, err := ParseCert(caPEM)
	if err != nil {
		return "", fmt.Errorf("certs: CA hash: %w", err)
	}
	return CAHashOf(cert), nil
}

// CAHashOf is CAHash of a parsed certificate.
func CAHashOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}
