package phases

import (
	"context"
)

// kubelet writes the kubelet's KubeletConfiguration (cgroup driver and
// failCgroupV1 from the host's facts, cluster DNS at the tenth service
// IP), its flags and its systemd unit, and starts it — as a systemd unit
// when systemd runs, otherwise under kforge's supervisor — restarting it
// when its configuration changed. etcd's and the API server's static pods
// are already in /etc/kubernetes/manifests, so the kubelet starts them at
// once; the controller manager's and the scheduler's follow after wait.
func kubelet(ctx context.Context, d *Data) error {
	k, changed, err := d.writeKubelet(ctx)
	if err != nil {
		return err
	}
	return d.Services.Ensure(ctx, kubeletService(k), changed)
}
