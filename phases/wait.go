package phases

import (
	"context"
	"time"

	"kforge.dev/kforge/kube"
)

// How long init waits for the control plane and for the node, as kubeadm's
// default control-plane timeout.
const (
	APIServerWaitTimeout = 4 * time.Minute
	NodeReadyWaitTimeout = 4 * time.Minute
)

// waitControlPlane waits until this node's API server answers /readyz
// (polled every 200 ms) and then until the node has registered and is
// Ready (watched). It changes nothing on the host; in the cluster it binds
// admin.conf's group to cluster-admin, which later phases need. A timeout
// says what was last seen and adds the last lines of the logs of etcd and
// the API server, or of the kubelet.
func waitControlPlane(ctx context.Context, d *Data) error {
	return d.waitAPIAndNode(ctx, d.LocalAPIServer(), APIServerWaitTimeout, NodeReadyWaitTimeout)
}

func (d *Data) waitAPIAndNode(ctx context.Context, server string, apiTimeout, nodeTimeout time.Duration) error {
	c, err := kube.FromHost(ctx, d.Host, AdminConf, server)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := c.WaitAPIServer(ctx, apiTimeout); err != nil {
		return d.diagnose(ctx, err, "etcd", "kube-apiserver", "kubelet")
	}
	d.Out.Logf("API server %s ready after %s", server, time.Since(start).Round(time.Millisecond))
	if err := d.ensureClusterAdmins(ctx, c, server); err != nil {
		return err
	}
	start = time.Now()
	if d.CNIPlugin() != "bridge" {
		// The network's DaemonSet comes with the add-ons: the node turns
		// Ready after them (node-ready).
		if err := c.WaitNodeRegistered(ctx, d.NodeName, nodeTimeout); err != nil {
			return d.diagnose(ctx, err, "kubelet")
		}
		d.Out.Logf("node %s registered after %s", d.NodeName, time.Since(start).Round(time.Millisecond))
		return nil
	}
	if err := c.WaitNodeReady(ctx, d.NodeName, nodeTimeout); err != nil {
		return d.diagnose(ctx, err, "kubelet")
	}
	d.Out.Logf("node %s Ready after %s", d.NodeName, time.Since(start).Round(time.Millisecond))
	return nil
}

// nodeReady waits until the node is Ready: at once with the bridge
// network (wait saw it), after the network's DaemonSet has started
// otherwise.
func nodeReady(ctx context.Context, d *Data) error {
	c, err := kube.FromHost(ctx, d.Host, AdminConf, d.LocalAPIServer())
	if err != nil {
		return err
	}
	if err := c.WaitNodeReady(ctx, d.NodeName, NodeReadyWaitTimeout); err != nil {
		return d.diagnose(ctx, err, "kubelet")
	}
	return nil
}
