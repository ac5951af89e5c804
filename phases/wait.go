package phases

import (
	"context"
	"errors"
	"time"

	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
)

// How long init waits for the control plane and for the node, as kubeadm's
// default control-plane timeout.
const (
	APIServerWaitTimeout = 4 * time.Minute
	NodeReadyWaitTimeout = 4 * time.Minute
)

// waitControlPlane waits until this node's API server answers /readyz
// (polled every 50 ms) and then until the node has registered and is
// Ready (watched). On the host it only restarts a kubelet kforge runs whose
// node is late (see kubeletGrace); in the cluster it binds admin.conf's
// group to cluster-admin, which later phases need. A timeout says what was
// last seen and adds the last lines of the logs of etcd and the API server,
// or of the kubelet.
func waitControlPlane(ctx context.Context, d *Data) error {
	api, node := APIServerWaitTimeout, NodeReadyWaitTimeout
	if d.WaitTimeout > 0 {
		api, node = d.WaitTimeout, d.WaitTimeout
	}
	if err := d.waitAPIAndNode(ctx, d.LocalAPIServer(), api, node); err != nil {
		return err
	}
	// etcd's and the API server's static pods run by now; when the kubelet
	// lost the race to publish them (see checkMirrorPods), restarting it
	// here costs less than after the controller manager and the scheduler.
	c, err := kube.FromHost(ctx, d.Host, layout.AdminConf, d.LocalAPIServer())
	if err != nil {
		return err
	}
	return d.checkMirrorPods(ctx, c, staticPods[:2], time.Second)
}

func (d *Data) waitAPIAndNode(ctx context.Context, server string, apiTimeout, nodeTimeout time.Duration) error {
	c, err := kube.FromHost(ctx, d.Host, layout.AdminConf, server)
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
	// The network's DaemonSet comes with the add-ons: with any network but
	// the bridge the node turns Ready after them (node-ready).
	done, what := kube.NodeReady, "Ready"
	if d.CNIPlugin() != "bridge" {
		done, what = kube.NodeInitialized, "registered"
	}
	err = c.WaitNode(ctx, d.NodeName, min(kubeletGrace, nodeTimeout), done)
	var late *kube.WaitError
	if errors.As(err, &late) && nodeTimeout > kubeletGrace && ctx.Err() == nil {
		// While the API server started, the kubelet's registration retries
		// backed off (to 7 s), and its CSINode set-up gives up for 15 s
		// when the node is not registered within about 2 s of the API
		// server answering: a slow start leaves the node NotReady for half
		// a minute. A new kubelet does both at once.
		restarted, rerr := d.restartKubelet(ctx)
		switch {
		case rerr != nil:
			d.Out.Infof("  ! node %s not %s %s after the API server (%s); restarting the kubelet failed, waiting on: %v", d.NodeName, what, kubeletGrace, late.Last, rerr)
		case restarted:
			d.Out.Logf("node %s not %s %s after the API server (%s); restarted the kubelet, whose retries back off while the API server starts", d.NodeName, what, kubeletGrace, late.Last)
		}
		err = c.WaitNode(ctx, d.NodeName, nodeTimeout-kubeletGrace, done)
		if errors.As(err, &late) {
			late.Waited = time.Since(start)
		}
	}
	if err != nil {
		return d.diagnose(ctx, err, "kubelet")
	}
	d.Out.Logf("node %s %s after %s", d.NodeName, what, time.Since(start).Round(time.Millisecond))
	return nil
}

// nodeReady waits until the node is Ready: at once with the bridge
// network (wait saw it), after the network's DaemonSet has started
// otherwise. Then it waits for the kubelet's serving certificate from the
// cluster CA (waitServingCert), deciding the node's own request itself.
func nodeReady(ctx context.Context, d *Data) error {
	c, err := kube.FromHost(ctx, d.Host, layout.AdminConf, d.LocalAPIServer())
	if err != nil {
		return err
	}
	if err := c.WaitNodeReady(ctx, d.NodeName, NodeReadyWaitTimeout); err != nil {
		return d.diagnose(ctx, err, "kubelet")
	}
	return d.waitServingCert(ctx, c.Kube, true)
}

// kubeletGrace is how long after the API server is ready the wait phase
// waits for its node before it restarts the kubelet once; the node
// registers as soon as the API server answers when nothing went wrong.
const kubeletGrace = 3 * time.Second

// restartKubelet restarts this host's kubelet with its current files when
// kforge runs it (its unit or its supervisor service is kforge's); it
// reports whether it did.
func (d *Data) restartKubelet(ctx context.Context) (bool, error) {
	k, _, err := d.renderKubelet()
	if err != nil {
		return false, err
	}
	if ok, err := d.Services.Owns(ctx, "kubelet"); err != nil || !ok {
		return false, err
	}
	d.Results.KubeletRestarted = true
	return true, d.Services.Restart(ctx, kubeletService(k))
}
