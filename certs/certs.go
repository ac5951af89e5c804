// Package certs creates and checks a control plane's PKI: the three CAs
// (cluster, front proxy, etcd), the serving and client certificates kubeadm
// makes, and the service-account key pair. Files are read and written only
// through a host.Host, with kubeadm's names under a PKI directory
// (/etc/kubernetes/pki by default). Certificates are issued with cfssl.
package certs

import (
	"fmt"
	"net"
	"path"
	"time"

	cflog "github.com/cloudflare/cfssl/log"

	"kforge.dev/kforge/layout"
)

// Key algorithms.
const (
	AlgorithmECDSAP256 = "ECDSA-P256"
	AlgorithmRSA2048   = "RSA-2048"
)

// Defaults, as kubeadm's.
const (
	DefaultServiceSubnet = "10.96.0.0/12"
	DefaultCAValidity    = 10 * 365 * 24 * time.Hour
	DefaultValidity      = 365 * 24 * time.Hour
	// Backdate is subtracted from "now" for NotBefore so that a node whose
	// clock is a little behind still accepts a fresh certificate.
	Backdate = 5 * time.Minute
)

// File modes.
const (
	CertMode = layout.PublicMode
	KeyMode  = layout.SecretMode
)

func init() {
	// cfssl logs every CSR and signature at Info on stderr; kforge reports
	// through its own reporter and returns cfssl's errors.
	cflog.Level = cflog.LevelCritical
}

// Spec is what the PKI is made for.
type Spec struct {
	// Dir is the PKI directory on the host; layout.PKIDir when empty.
	Dir string
	// NodeName is the control-plane node's name (CN of the etcd serving
	// certificates, a SAN of the API server's).
	NodeName string
	// DNSDomain is the cluster's DNS domain; layout.DNSDomain when empty.
	DNSDomain string
	// AdvertiseAddress is the IP the API server and etcd listen on.
	AdvertiseAddress net.IP
	// ServiceSubnet is the service CIDR (the first of a comma-separated
	// dual-stack pair counts); its first address is the API server's
	// ClusterIP. DefaultServiceSubnet when empty.
	ServiceSubnet string
	// ControlPlaneEndpoint is host or host:port, optional.
	ControlPlaneEndpoint string
	// ExtraSANs are further IPs or DNS names for the API server.
	ExtraSANs []string
	// Algorithm is AlgorithmECDSAP256 (default) or AlgorithmRSA2048.
	Algorithm string
	// CAValidity and Validity are the lifetimes of new CAs and of new
	// leaf certificates; DefaultCAValidity and DefaultValidity when zero.
	CAValidity, Validity time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// WithDefaults returns s with every empty field set to its default.
func (s Spec) WithDefaults() Spec {
	if s.Dir == "" {
		s.Dir = layout.PKIDir
	}
	if s.DNSDomain == "" {
		s.DNSDomain = layout.DNSDomain
	}
	if s.ServiceSubnet == "" {
		s.ServiceSubnet = DefaultServiceSubnet
	}
	if s.Algorithm == "" {
		s.Algorithm = AlgorithmECDSAP256
	}
	if s.CAValidity == 0 {
		s.CAValidity = DefaultCAValidity
	}
	if s.Validity == 0 {
		s.Validity = DefaultValidity
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return s
}

func (s Spec) validate() error {
	if s.NodeName == "" {
		return fmt.Errorf("certs: node name is empty")
	}
	if s.AdvertiseAddress == nil {
		return fmt.Errorf("certs: advertise address is empty")
	}
	if err := checkAlgorithm(s.Algorithm); err != nil {
		return err
	}
	if s.Validity > s.CAValidity {
		return fmt.Errorf("certs: validity %s outlasts the CA validity %s", s.Validity, s.CAValidity)
	}
	return nil
}

func checkAlgorithm(a string) error {
	if a != AlgorithmECDSAP256 && a != AlgorithmRSA2048 {
		return fmt.Errorf("certs: key algorithm %q: use %s or %s", a, AlgorithmECDSAP256, AlgorithmRSA2048)
	}
	return nil
}

// Path returns the path of a file relative to the PKI directory.
func (s Spec) Path(name string) string { return path.Join(s.Dir, name) }

// Outcome says what Ensure did with one file.
type Outcome string

const (
	Created Outcome = "created"
	Reused  Outcome = "reused"
)

// FileResult is one file Ensure created or reused.
type FileResult struct {
	Path    string
	Outcome Outcome
}

// Report lists every file of the PKI in order, created or reused.
type Report struct {
	Files []FileResult
}

// Created returns the paths Ensure wrote.
func (r Report) Created() []string { return r.paths(Created) }

// Reused returns the paths Ensure kept.
func (r Report) Reused() []string { return r.paths(Reused) }

func (r Report) paths(o Outcome) []string {
	var out []string
	for _, f := range r.Files {
		if f.Outcome == o {
			out = append(out, f.Path)
		}
	}
	return out
}

func (r *Report) add(p string, o Outcome) { r.Files = append(r.Files, FileResult{p, o}) }
