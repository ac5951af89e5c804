package certs

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"kforge.dev/kforge/host"
)

// RenewHint is the command that recreates removed PKI files.
const RenewHint = "kforge init phase certs"

// Ensure makes the PKI of s on h: it reuses every valid certificate and key
// already there, creates what is missing, and writes the new files (keys
// 0600, certificates 0644). A certificate that exists but does not fit
// (another CA, expired, a different subject or SANs, a key that does not
// match) is an error naming the files to remove. Nothing is written unless
// every existing file is valid.
func Ensure(ctx context.Context, h host.Host, s Spec) (Report, error) {
	s = s.WithDefaults()
	if err := s.validate(); err != nil {
		return Report{}, err
	}
	p := &plan{ctx: ctx, h: h, s: s, now: s.Now(), cas: map[string]*CA{}}
	var errs []error
	for _, c := range List() {
		if err := p.cert(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.serviceAccount(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Report{}, errors.Join(errs...)
	}
	for _, w := range p.writes {
		if err := h.WriteFile(ctx, w.path, w.data, w.mode); err != nil {
			return Report{}, fmt.Errorf("certs: write %s: %w", w.path, err)
		}
	}
	return p.report, nil
}

// Request returns what c is issued from for s: subject, usages, SANs, key
// algorithm, lifetime and the current time.
func (c Cert) Request(s Spec) (Request, error) {
	s = s.WithDefaults()
	r := Request{
		CommonName:   c.CN(s),
		Organization: c.Organization,
		Usages:       c.Usages,
		Algorithm:    s.Algorithm,
		Validity:     s.Validity,
		Now:          s.Now(),
	}
	if c.IsCA() {
		r.Validity = s.CAValidity
	}
	if c.SANs != nil {
		var err error
		if r.AltNames, err = c.SANs(s); err != nil {
			return r, err
		}
	}
	return r, nil
}

type write struct {
	path string
	data []byte
	mode fs.FileMode
}

type plan struct {
	ctx    context.Context
	h      host.Host
	s      Spec
	now    time.Time
	cas    map[string]*CA // by Cert.Name; nil when the CA is unusable
	writes []write
	report Report
}

func (p *plan) create(path string, data []byte, mode fs.FileMode) {
	p.writes = append(p.writes, write{path, data, mode})
	p.report.add(path, Created)
}

// read returns a file's contents, or nil when it does not exist.
func (p *plan) read(path string) ([]byte, error) {
	b, err := p.h.ReadFile(p.ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("certs: read %s: %w", path, err)
	}
	return b, nil
}

func renew(reason string, paths ...string) error {
	return fmt.Errorf("certs: %s; remove %s and re-run `%s`", reason, strings.Join(paths, " and "), RenewHint)
}

func (p *plan) cert(c Cert) error {
	certPath, keyPath := p.s.Path(c.CertFile()), p.s.Path(c.KeyFile())
	certPEM, err := p.read(certPath)
	if err != nil {
		return err
	}
	keyPEM, err := p.read(keyPath)
	if err != nil {
		return err
	}
	r, err := c.Request(p.s)
	if err != nil {
		return err
	}
	if c.IsCA() {
		return p.ca(c, r, certPath, keyPath, certPEM, keyPEM)
	}
	ca := p.cas[c.CA]
	if ca == nil {
		return nil // the CA's own error says what to do
	}
	switch {
	case certPEM == nil && keyPEM != nil:
		key, err := ParseKey(keyPEM)
		if err != nil {
			return renew(fmt.Sprintf("%s: %v", keyPath, err), keyPath)
		}
		r.Key = key
		kp, err := ca.Issue(r)
		if err != nil {
			return err
		}
		p.create(certPath, kp.CertPEM, CertMode)
		p.report.add(keyPath, Reused)
		return nil
	case certPEM == nil || keyPEM == nil:
		kp, err := ca.Issue(r)
		if err != nil {
			return err
		}
		p.create(certPath, kp.CertPEM, CertMode)
		p.create(keyPath, kp.KeyPEM, KeyMode)
		return nil
	}
	kp, err := ParseKeyPair(certPEM, keyPEM)
	if err != nil {
		return renew(fmt.Sprintf("%s, %s: %v", certPath, keyPath, err), certPath, keyPath)
	}
	if err := kp.Cert.CheckSignatureFrom(ca.Cert); err != nil {
		return renew(fmt.Sprintf("%s is signed by a different CA than %s", certPath, p.s.Path(caFile(c.CA))), certPath, keyPath)
	}
	if err := CheckPeriod(kp.Cert, p.now); err != nil {
		return renew(fmt.Sprintf("%s %v", certPath, err), certPath, keyPath)
	}
	if d := r.Diff(kp.Cert); len(d) > 0 {
		return renew(fmt.Sprintf("%s: %s", certPath, strings.Join(d, "; ")), certPath, keyPath)
	}
	p.report.add(certPath, Reused)
	p.report.add(keyPath, Reused)
	return nil
}

func caFile(name string) string {
	c, _ := Lookup(name)
	return c.CertFile()
}

func (p *plan) ca(c Cert, r Request, certPath, keyPath string, certPEM, keyPEM []byte) error {
	p.cas[c.Name] = nil
	switch {
	case certPEM == nil && keyPEM == nil:
		ca, err := NewCA(r)
		if err != nil {
			return err
		}
		p.cas[c.Name] = ca
		p.create(certPath, ca.CertPEM, CertMode)
		p.create(keyPath, ca.KeyPEM, KeyMode)
		return nil
	case keyPEM == nil:
		return fmt.Errorf("certs: %s exists but its key %s is missing; restore the key, or remove %s and re-run `%s` (every certificate it signed is then renewed by hand)",
			certPath, keyPath, certPath, RenewHint)
	case certPEM == nil:
		return fmt.Errorf("certs: %s exists but its certificate %s is missing; restore the certificate, or remove %s and re-run `%s` (every certificate it signed is then renewed by hand)",
			keyPath, certPath, keyPath, RenewHint)
	}
	kp, err := ParseKeyPair(certPEM, keyPEM)
	if err == nil {
		err = checkCA(kp.Cert, p.now)
	}
	if err != nil {
		return fmt.Errorf("certs: CA %s, %s: %v; replace them, or remove both and every certificate they signed and re-run `%s`",
			certPath, keyPath, err, RenewHint)
	}
	p.cas[c.Name] = &CA{*kp}
	p.report.add(certPath, Reused)
	p.report.add(keyPath, Reused)
	return nil
}

// serviceAccount keeps sa.key, or makes an RSA-2048 key as kubeadm does,
// and writes its public half to sa.pub.
func (p *plan) serviceAccount() error {
	keyPath, pubPath := p.s.Path(SAKeyFile), p.s.Path(SAPubFile)
	keyPEM, err := p.read(keyPath)
	if err != nil {
		return err
	}
	pubPEM, err := p.read(pubPath)
	if err != nil {
		return err
	}
	if keyPEM == nil {
		if pubPEM != nil {
			return fmt.Errorf("certs: %s exists but %s is missing; restore the key, or remove %s and re-run `%s` (tokens signed by the old key stop working)",
				pubPath, keyPath, pubPath, RenewHint)
		}
		key, keyPEM, err := NewKey(AlgorithmRSA2048)
		if err != nil {
			return err
		}
		pub, err := EncodePublicKey(key.Public())
		if err != nil {
			return err
		}
		p.create(keyPath, keyPEM, KeyMode)
		p.create(pubPath, pub, CertMode)
		return nil
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return fmt.Errorf("certs: %s: %v; restore it, or remove %s and %s and re-run `%s`", keyPath, err, keyPath, pubPath, RenewHint)
	}
	if _, ok := key.(*rsa.PrivateKey); !ok {
		return fmt.Errorf("certs: %s is a %T, want an RSA key; remove %s and %s and re-run `%s`", keyPath, key, keyPath, pubPath, RenewHint)
	}
	want, err := EncodePublicKey(key.Public())
	if err != nil {
		return err
	}
	p.report.add(keyPath, Reused)
	if pubPEM == nil {
		p.create(pubPath, want, CertMode)
		return nil
	}
	if !publicKeyEqual(pubPEM, key.Public()) {
		return renew(fmt.Sprintf("%s is not the public half of %s", pubPath, keyPath), pubPath)
	}
	p.report.add(pubPath, Reused)
	return nil
}

func publicKeyEqual(pubPEM []byte, pub crypto.PublicKey) bool {
	b, _ := pem.Decode(pubPEM)
	if b == nil {
		return false
	}
	have, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return false
	}
	k, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(have)
}
