package phases

import (
	"context"
	"net"
	"slices"

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

// lbSANs are the API server's names that the node-local load balancer
// of a cluster with several control planes passes on: its clients dial
// 127.0.0.1.
func (d *Data) lbSANs() []string {
	if !d.Cluster.HA() {
		return nil
	}
	return []string{"127.0.0.1", "localhost"}
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
		ControlPlaneEndpoint: d.ClusterEndpoint(),
		ExtraSANs:            append(slices.Clone(c.Certs.ExtraSANs), d.lbSANs()...),
		Algorithm:            c.Certs.Algorithm,
		CAValidity:           caValidity,
		Validity:             validity,
		Now:                  d.Now,
	}, nil
}
