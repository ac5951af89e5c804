package phases

import (
	"context"
	"net"

	"kforge.dev/kforge/kubeconfig"
	"kforge.dev/kforge/layout"
)

// kubeconfigPhase writes admin.conf, super-admin.conf, kubelet.conf,
// controller-manager.conf and scheduler.conf under /etc/kubernetes, each
// 0600 with a client certificate signed by the cluster CA. Valid existing
// files are reused.
func kubeconfigPhase(ctx context.Context, d *Data) error {
	r, err := kubeconfig.Ensure(ctx, d.Host, d.kubeconfigSpec())
	if err != nil {
		return err
	}
	d.Out.Logf("kubeconfig on %s: created %v, reused %v", d.Host.Name(), r.Created(), r.Reused())
	return nil
}

func (d *Data) kubeconfigSpec() kubeconfig.Spec {
	_, validity, _ := d.Cluster.Certs.Durations()
	return kubeconfig.Spec{
		Dir:                  layout.KubernetesDir,
		PKIDir:               layout.PKIDir,
		ClusterName:          d.Cluster.Name,
		NodeName:             d.NodeName,
		AdvertiseAddress:     net.ParseIP(d.AdvertiseAddress),
		BindPort:             layout.APIServerPort,
		ControlPlaneEndpoint: d.ClusterEndpoint(),
		KubeletEndpoint:      d.kubeletEndpoint(),
		Algorithm:            d.Cluster.Certs.Algorithm,
		Validity:             validity,
		Now:                  d.Now,
	}
}

// kubeletEndpoint is where a control plane's kubelet.conf points: the
// node-local load balancer with several control planes, else the
// endpoint as for the other kubeconfigs.
func (d *Data) kubeletEndpoint() string {
	if d.Cluster.HA() {
		return d.NodeAPIServer()
	}
	return ""
}
