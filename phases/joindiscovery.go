package phases

import (
	"context"

	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// joinDiscovery makes the host trust the cluster: token discovery (the
// token's signature over cluster-info, the CA pinned by its hash, the
// token accepted by the API server), the cluster's settings read from
// kube-system/kforge-config with the token, and a check that no other
// Ready node has this node's name. Only then does it write the cluster CA
// to /etc/kubernetes/pki/ca.crt and, on a host that has not joined yet,
// the kubelet's bootstrap kubeconfig (the token, 0600) to
// /etc/kubernetes/bootstrap-kubelet.conf.
func joinDiscovery(ctx context.Context, d *Data) error {
	if err := d.joinCluster(ctx); err != nil {
		return err
	}
	r := d.Results.Discovered
	if err := d.joinWrites(ctx); err != nil {
		return err
	}
	if _, err := host.WriteChanged(ctx, d.Host, host.File{Path: layout.CACert, Data: r.CACert, Mode: layout.PublicMode}); err != nil {
		return err
	}
	if d.Results.Joined {
		// The kubelet has its own client certificate already.
		return nil
	}
	// The kubelet reaches the cluster as its node will: through the
	// node's load balancer when there are several control planes.
	boot := *r
	boot.Server = "https://" + d.NodeAPIServer()
	kc, err := discovery.BootstrapKubeconfig(&boot, d.Discovery.Token)
	if err != nil {
		return err
	}
	return d.Host.WriteFile(ctx, layout.BootstrapKubeletConf, kc, layout.SecretMode)
}
