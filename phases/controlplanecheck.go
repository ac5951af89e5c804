package phases

import (
	"context"
	"time"

	"kforge.dev/kforge/kube"
)

// ControlPlaneCheckTimeout is how long init waits for the controller
// manager and the scheduler, as kubeadm's control-plane check.
const ControlPlaneCheckTimeout = 4 * time.Minute

// leaderLeases are the leader-election leases in kube-system of the
// components the control-plane check waits for.
var leaderLeases = []string{"kube-controller-manager", "kube-scheduler"}

// controlPlaneCheck waits until the controller manager and the scheduler
// have taken or renewed their leader leases: they run, reach the API
// server with their kubeconfigs and are allowed to work. They start after
// wait, so this is where a broken one fails init; the error says what each
// lease shows, with the component's log. A component whose manifest this
// run left unchanged passes when its lease is held, so that a re-run on a
// working cluster does not wait for the next renewal.
func controlPlaneCheck(ctx context.Context, d *Data) error {
	return d.checkControlPlane(ctx, ControlPlaneCheckTimeout)
}

func (d *Data) checkControlPlane(ctx context.Context, timeout time.Duration) error {
	c, err := d.adminClient(ctx, "")
	if err != nil {
		return err
	}
	var held []string
	for _, l := range leaderLeases {
		if !d.Results.ChangedManifests[l+".yaml"] {
			held = append(held, l)
		}
	}
	left, err := c.WaitLeasesRenewed(ctx, "kube-system", leaderLeases, held, timeout)
	if err != nil {
		return d.diagnose(ctx, err, left...)
	}
	return d.checkMirrorPods(ctx, c, staticPods, mirrorGrace)
}

// staticPods are the control plane's static pods, by component.
var staticPods = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// mirrorGrace is how long the check waits for the kubelet to publish the
// static pods before it restarts the kubelet.
const mirrorGrace = 3 * time.Second

// checkMirrorPods makes sure the API server shows this node's static pods,
// so that `kubectl get pods -A` tells the truth once init ends. The
// kubelet publishes a static pod (its mirror pod) as soon as the node has
// registered; when the API server refuses it because its system priority
// classes, which it creates just after it starts accepting requests, are
// not there yet, the kubelet tries again only at its next periodic sync, a
// minute later. A new kubelet publishes them at once. A mirror pod still
// missing after that is a warning: the components themselves run.
func (d *Data) checkMirrorPods(ctx context.Context, c *kube.Client, components []string, grace time.Duration) error {
	// Only a cancelled run fails here: the components run whatever the API
	// server shows, so anything else is a warning.
	unknown := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.Out.Infof("  ! cannot tell whether the API server shows the static pods of %s: %v", d.NodeName, err)
		return nil
	}
	missing, err := c.WaitMirrorPods(ctx, d.NodeName, components, grace)
	if err != nil {
		return unknown(err)
	}
	if len(missing) > 0 && d.Results.KubeletRestarted {
		// A kubelet this run restarted publishes them at once: wait.
		if missing, err = c.WaitMirrorPods(ctx, d.NodeName, components, 10*time.Second); err != nil {
			return unknown(err)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	restarted, err := d.restartKubelet(ctx)
	if err != nil || !restarted {
		d.Out.Infof("  ! the API server does not show the static pods %v of %s yet; the kubelet publishes them at its next sync", missing, d.NodeName)
		return nil
	}
	d.Out.Logf("static pods %v of %s not published %s after the API server was ready; restarted the kubelet", missing, d.NodeName, grace)
	if missing, err = c.WaitMirrorPods(ctx, d.NodeName, components, time.Minute); err != nil {
		return unknown(err)
	}
	if len(missing) > 0 {
		d.Out.Infof("  ! the API server does not show the static pods %v of %s a minute after the kubelet's restart", missing, d.NodeName)
	}
	return nil
}
