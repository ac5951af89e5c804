package kubeconfig

import (
	"context"
	"crypto/x509"
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/host"
)

// Request returns the client certificate request of id.
func (s Spec) Request(id Identity) certs.Request {
	s = s.WithDefaults()
	return certs.Request{
		CommonName:   id.User,
		Organization: id.Organization,
		Usages:       []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		Algorithm:    s.Algorithm,
		Validity:     s.Validity,
		Now:          s.Now(),
	}
}

// Build returns the kubeconfig of the identity called name with a new
// client certificate signed by ca. It writes nothing.
func Build(ca *certs.CA, s Spec, name string) ([]byte, error) {
	s = s.WithDefaults()
	id, err := s.Identity(name)
	if err != nil {
		return nil, err
	}
	server, err := s.Server(id)
	if err != nil {
		return nil, err
	}
	kp, err := ca.Issue(s.Request(id))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %s: %w", id.Name, err)
	}
	ctxName := s.Context(id)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[s.ClusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca.CertPEM}
	cfg.AuthInfos[id.User] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts[ctxName] = &clientcmdapi.Context{Cluster: s.ClusterName, AuthInfo: id.User}
	cfg.CurrentContext = ctxName
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %s: %w", id.Name, err)
	}
	return out, nil
}

func loadCA(ctx context.Context, h host.Host, s Spec) (*certs.CA, error) {
	ca, err := certs.LoadCA(ctx, h, s.PKIDir, "ca", s.Now())
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: cluster CA: %w (run `%s` first)", err, certs.RenewHint)
	}
	return ca, nil
}
