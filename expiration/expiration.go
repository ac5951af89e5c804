// Package expiration lists when a node's certificates expire, as kubeadm
// certs check-expiration does: the PKI's CAs and leaf certificates, the
// client certificates embedded in the kubeconfigs, and the kubelet's own
// client and serving certificates. It reads them through a Host, so it
// works on this machine and over SSH alike.
package expiration

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kubeconfig"
	"kforge.dev/kforge/layout"
)

// Who renews a certificate.
const (
	// ByKforge: kforge issued it from the cluster's CAs and re-issues it.
	ByKforge = "kforge"
	// ByKubelet: the kubelet rotates it itself, through the cluster's CSR
	// API.
	ByKubelet = "kubelet"
)

// Kubelet certificates' files.
const (
	KubeletClientCert  = layout.KubeletDir + "/pki/kubelet-client-current.pem"
	KubeletServingCert = layout.KubeletServingCert
)

// Cert is one certificate on a node.
type Cert struct {
	// Name is the certificate's name (kubeadm's: apiserver, etcd-server,
	// admin.conf, ...), or kubelet-client and kubelet-serving.
	Name string `json:"name"`
	// File holds it (a kubeconfig for an embedded one).
	File string `json:"file"`
	// CA tells whether it is a certificate authority.
	CA bool `json:"ca"`
	// NotAfter is when it expires.
	NotAfter time.Time `json:"notAfter"`
	// Residual is the time left at the check, negative once expired;
	// ResidualSeconds is the same for programs.
	Residual        time.Duration `json:"-"`
	ResidualSeconds int64         `json:"residualSeconds"`
	// SignedBy is the issuer's common name.
	SignedBy string `json:"signedBy"`
	// RenewedBy says who renews it: kforge, kubelet or none.
	RenewedBy string `json:"renewedBy"`
}

// Check lists the certificates present on h, in kubeadm's order: the CAs,
// the leaf certificates, the kubeconfigs, then the kubelet's. A file that
// is absent is left out (a worker has only ca.crt and the kubelet's); one
// that is there but not a certificate is an error naming it.
func Check(ctx context.Context, h host.Host, now time.Time) ([]Cert, error) {
	var out []Cert
	var errs []error
	add := func(name, file string, c *x509.Certificate, renewedBy string) {
		left := c.NotAfter.Sub(now).Round(time.Second)
		out = append(out, Cert{
			Name: name, File: file, CA: c.IsCA, NotAfter: c.NotAfter.UTC(), Residual: left, ResidualSeconds: int64(left.Seconds()),
			SignedBy: c.Issuer.CommonName, RenewedBy: renewedBy,
		})
	}
	read := func(file string) ([]byte, bool) {
		data, err := h.ReadFile(ctx, file)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: %w", file, h.Name(), err))
			return nil, false
		}
		return data, true
	}
	// certFile adds the certificate in file, when there is one.
	certFile := func(name, file, renewedBy string) {
		data, ok := read(file)
		if !ok {
			return
		}
		cert, err := certs.ParseCert(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: %w", file, h.Name(), err))
			return
		}
		add(name, file, cert, renewedBy)
	}
	list := certs.List()
	sort.SliceStable(list, func(i, j int) bool { return list[i].IsCA() && !list[j].IsCA() })
	for _, c := range list {
		certFile(c.Name, path.Join(layout.PKIDir, c.CertFile()), ByKforge)
	}
	for _, name := range []string{kubeconfig.AdminName, kubeconfig.SuperAdminName, kubeconfig.ControllerManagerName, kubeconfig.SchedulerName, kubeconfig.KubeletName} {
		file := path.Join(layout.KubernetesDir, name+".conf")
		data, ok := read(file)
		if !ok {
			continue
		}
		cfg, err := clientcmd.Load(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: %w", file, h.Name(), err))
			continue
		}
		kctx := cfg.Contexts[cfg.CurrentContext]
		if kctx == nil || cfg.AuthInfos[kctx.AuthInfo] == nil {
			errs = append(errs, fmt.Errorf("%s on %s: the current context has no user", file, h.Name()))
			continue
		}
		// The kubelet's kubeconfig points at its rotated client
		// certificate, listed below.
		pemData := cfg.AuthInfos[kctx.AuthInfo].ClientCertificateData
		if len(pemData) == 0 {
			continue
		}
		cert, err := certs.ParseCert(pemData)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: client certificate: %w", file, h.Name(), err))
			continue
		}
		add(name+".conf", file, cert, ByKforge)
	}
	certFile("kubelet-client", KubeletClientCert, ByKubelet)
	certFile("kubelet-serving", KubeletServingCert, ByKubelet)
	return out, errors.Join(errs...)
}

// Expiring returns the certificates that expire within d of the check.
func Expiring(list []Cert, d time.Duration) []Cert {
	var out []Cert
	for _, c := range list {
		if c.Residual < d {
			out = append(out, c)
		}
	}
	return out
}

// HumanDuration writes a residual time as kubeadm does: 364d, 9y, 5h,
// or "expired".
func HumanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "expired"
	case d >= 2*365*24*time.Hour:
		return fmt.Sprintf("%dy", int(d.Hours()/24/365))
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dm", int(d.Minutes()))
}
