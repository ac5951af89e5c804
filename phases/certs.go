package phases

import (
	"context"
	"net"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/layout"
)

// certsPhase creates the control plane's PKI under /etc/kubernetes/pki:
// the cluster, front-proxy and etcd CAs, the serving and client
// certificates kubeadm makes, the service-account key pair, and the key
// that encrypts Secrets at rest. Valid existing files are reused; missing
// ones are filled in.
func certsPhase(ctx context.Context, d *Data) error {
	spec, err := d.certSpec()
	if err != nil {
		return err
	}
	r, err := certs.Ensure(ctx, d.Host, spec)
	if err != nil {
		return err
	}
	d.Out.Logf("certs on %s: created %v, reused %v", d.Host.Name(), r.Created(), r.Reused())
	created, err := certs.EnsureEncryptionConfig(ctx, d.Host)
	if err != nil {
		return err
	}
	d.Out.Logf("encryption of Secrets at rest on %s: %s (new key: %v)", d.Host.Name(), layout.EncryptionConfig, created)
	return nil
}

func (d *Data) certSpec() (certs.Spec, error) {
	c := d.Cluster
	caValidity, validity, err := c.Certs.Durations()
	if err != nil {
		return certs.Spec{}, err
	}
	return certs.Spec{
		Dir:                  layout.PKIDir,
		NodeName:             d.NodeName,
		DNSDomain:            c.Networking.DNSDomain,
		AdvertiseAddress:     net.ParseIP(d.AdvertiseAddress),
		ServiceSubnet:        c.Networking.ServiceSubnet,
		ControlPlaneEndpoint: c.ControlPlaneEndpoint,
		ExtraSANs:            c.Certs.ExtraSANs,
		Algorithm:            c.Certs.Algorithm,
		CAValidity:           caValidity,
		Validity:             validity,
		Now:                  d.Now,
	}, nil
}
