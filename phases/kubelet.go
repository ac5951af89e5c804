package phases

import (
	"context"

	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/services"
)

// kubelet writes the kubelet's KubeletConfiguration (cgroup driver and
// failCgroupV1 from the host's facts, cluster DNS at the tenth service
// IP), its flags and its systemd unit, and starts it — as a systemd unit
// when systemd runs, otherwise under kforge's supervisor — restarting it
// when its configuration or its binary changed. etcd's and the API server's static pods
// are already in /etc/kubernetes/manifests, so the kubelet starts them at
// once; the controller manager's and the scheduler's follow after wait.
func kubelet(ctx context.Context, d *Data) error {
	k, changed, err := d.writeKubelet(ctx)
	if err != nil {
		return err
	}
	return d.ensureKubelet(ctx, kubeletService(k), changed)
}

// ensureKubelet starts the kubelet, restarting it when its configuration
// changed or when the binary installed is not the one it runs (a bundle
// of another Kubernetes version), and records which binary runs.
func (d *Data) ensureKubelet(ctx context.Context, svc services.Service, changed bool) error {
	installed, started, err := d.binaryStarted(ctx, layout.KubeletBinary, layout.KubeletStarted)
	if err != nil {
		return err
	}
	if started != "" && installed != started {
		// A new binary under the same argv: kforge's supervisor would
		// leave the running one alone, so restart it outright.
		err = d.Services.Restart(ctx, svc)
	} else {
		err = d.Services.Ensure(ctx, svc, changed)
	}
	if err != nil {
		return err
	}
	return d.noteStarted(ctx, layout.KubeletStarted, installed, started)
}
