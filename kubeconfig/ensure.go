package kubeconfig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"k8s.io/client-go/tools/clientcmd"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/host"
)

// RenewHint is the command that recreates removed kubeconfig files.
const RenewHint = "kforge init phase kubeconfig"

// Report lists every kubeconfig file, created or reused.
type Report = certs.Report

// Ensure writes the kubeconfig files of s on h (mode 0600), signing client
// certificates with the cluster CA read from s.PKIDir. A file that already
// exists is reused when it trusts that CA, points at the expected server
// and holds a valid certificate for its user; otherwise it is an error
// naming the file to remove. Nothing is written unless every existing file
// is valid.
func Ensure(ctx context.Context, h host.Host, s Spec) (Report, error) {
	s = s.WithDefaults()
	if s.NodeName == "" {
		return Report{}, fmt.Errorf("kubeconfig: node name is empty")
	}
	ca, err := loadCA(ctx, h, s)
	if err != nil {
		return Report{}, err
	}
	type write struct {
		path string
		data []byte
	}
	var (
		report Report
		writes []write
		errs   []error
	)
	for _, id := range Identities(s.NodeName) {
		p := s.Path(id)
		data, err := h.ReadFile(ctx, p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			data, err := Build(ca, s, id.Name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			writes = append(writes, write{p, data})
			report.Files = append(report.Files, certs.FileResult{Path: p, Outcome: certs.Created})
		case err != nil:
			errs = append(errs, fmt.Errorf("kubeconfig: read %s: %w", p, err))
		default:
			if err := check(ctx, h, s, ca, id, data); err != nil {
				errs = append(errs, fmt.Errorf("kubeconfig: %s: %v; remove %s and re-run `%s`", p, err, p, RenewHint))
				continue
			}
			report.Files = append(report.Files, certs.FileResult{Path: p, Outcome: certs.Reused})
		}
	}
	if len(errs) > 0 {
		return Report{}, errors.Join(errs...)
	}
	for _, w := range writes {
		if err := h.WriteFile(ctx, w.path, w.data, Mode); err != nil {
			return Report{}, fmt.Errorf("kubeconfig: write %s: %w", w.path, err)
		}
	}
	return report, nil
}

// check tells why an existing kubeconfig cannot be kept for id.
func check(ctx context.Context, h host.Host, s Spec, ca *certs.CA, id Identity, data []byte) error {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return fmt.Errorf("cannot be parsed: %v", err)
	}
	kctx := cfg.Contexts[cfg.CurrentContext]
	if kctx == nil {
		return fmt.Errorf("has no current context")
	}
	cluster, user := cfg.Clusters[kctx.Cluster], cfg.AuthInfos[kctx.AuthInfo]
	if cluster == nil || user == nil {
		return fmt.Errorf("context %q lacks its cluster or user", cfg.CurrentContext)
	}
	caPEM, err := inlineOrFile(ctx, h, cluster.CertificateAuthorityData, cluster.CertificateAuthority)
	if err != nil {
		return fmt.Errorf("CA: %v", err)
	}
	caCert, err := certs.ParseCert(caPEM)
	if err != nil {
		return fmt.Errorf("CA: %v", err)
	}
	if !caCert.Equal(ca.Cert) {
		return fmt.Errorf("trusts a different CA than %s/ca.crt", s.PKIDir)
	}
	want, err := s.Server(id)
	if err != nil {
		return err
	}
	if cluster.Server != want {
		return fmt.Errorf("server is %s, want %s", cluster.Server, want)
	}
	certPEM, err := inlineOrFile(ctx, h, user.ClientCertificateData, user.ClientCertificate)
	if err != nil {
		return fmt.Errorf("client certificate: %v", err)
	}
	keyPEM, err := inlineOrFile(ctx, h, user.ClientKeyData, user.ClientKey)
	if err != nil {
		return fmt.Errorf("client key: %v", err)
	}
	kp, err := certs.ParseKeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("client certificate: %v", err)
	}
	if err := ca.Verify(kp.Cert, s.Now()); err != nil {
		return fmt.Errorf("client certificate %v", err)
	}
	r := s.Request(id)
	if d := r.Diff(kp.Cert); len(d) > 0 {
		return fmt.Errorf("client certificate: %s", strings.Join(d, "; "))
	}
	return nil
}

// inlineOrFile returns inline data, or reads path from h (a kubelet that
// rotates its certificate points at a file).
func inlineOrFile(ctx context.Context, h host.Host, data []byte, path string) ([]byte, error) {
	if len(data) > 0 {
		return data, nil
	}
	if path == "" {
		return nil, fmt.Errorf("none set")
	}
	b, err := h.ReadFile(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %v", path, err)
	}
	return b, nil
}
