package phases

import (
	"context"
	"time"
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
	if err == nil {
		return nil
	}
	return d.diagnose(ctx, err, left...)
}
