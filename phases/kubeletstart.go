package phases

import (
	"context"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// kubeletStart writes the worker's kubelet files — the KubeletConfiguration
// rendered as on every kforge node, from this host's facts and the
// cluster's networks, its flags and its systemd unit — and starts the
// kubelet with --bootstrap-kubeconfig: on its first start it sends a CSR
// with the token, the controller manager approves and signs it, and the
// kubelet writes /etc/kubernetes/kubelet.conf with its new client
// certificate. A kubelet that has not bootstrapped yet is restarted, so
// that it reads the bootstrap kubeconfig of this run. A bootstrapped one is
// restarted only when its configuration, its flags or its binary changed:
// kubelet.conf, which the kubelet writes itself, does not count.
func kubeletStart(ctx context.Context, d *Data) error {
	if err := d.joinCluster(ctx); err != nil {
		return err
	}
	if err := d.joinWrites(ctx); err != nil {
		return err
	}
	k, changed, err := d.writeKubelet(ctx)
	if err != nil {
		return err
	}
	svc := kubeletService(k)
	svc.Config = []string{layout.KubeletConfig}
	bootstrapped, err := host.Exists(ctx, d.Host, layout.KubeletConf)
	if err != nil {
		return err
	}
	if !bootstrapped {
		if err := d.Services.Stop(ctx, svc); err != nil {
			return err
		}
	}
	return d.ensureKubelet(ctx, svc, changed)
}
