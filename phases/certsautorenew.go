package phases

import (
	"context"
	"time"

	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/services"
)

// The job certs.autoRenew installs on control planes.
const (
	AutoRenewJob = "kforge-certs-renew"
	// AutoRenewEvery is how often it looks; AutoRenewWithin is how close
	// to expiry a certificate is renewed (kubeadm warns at 30 days too).
	AutoRenewEvery  = 24 * time.Hour
	AutoRenewWithin = 30 * 24 * time.Hour
)

// certsAutoRenew installs, with certs.autoRenew, a job on the control
// plane that runs `kforge certs renew --expiring-within 720h` once a day
// (a systemd timer, or a job of kforge's supervisor: d.Services decides),
// with the cluster file's certs.validity; without it, it removes a job an
// earlier run installed.
func certsAutoRenew(ctx context.Context, d *Data) error {
	if !d.Cluster.Certs.AutoRenew {
		return d.Services.RemoveJob(ctx, AutoRenewJob)
	}
	_, validity, err := d.Cluster.Certs.Durations()
	if err != nil {
		return err
	}
	return d.Services.EnsureJob(ctx, services.Job{
		Name: AutoRenewJob,
		Argv: []string{layout.KforgeBinary, "certs", "renew", "--plain",
			"--expiring-within", AutoRenewWithin.String(), "--validity", validity.String()},
		Every: AutoRenewEvery,
	})
}
