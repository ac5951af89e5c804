package phases

import (
	"context"

	"kforge.dev/kforge/host"
)

// ensureUnit enables and starts a systemd unit, restarting it when its
// configuration changed. The kubelet's unit files are written by the
// kubelet phase; containerd's comes with the OS package.
func (d *Data) ensureUnit(ctx context.Context, s Service, restart bool) error {
	unit := s.Unit
	if unit == "" {
		unit = s.Name
	}
	run := func(argv ...string) error {
		_, err := d.Host.Run(ctx, host.Cmd{Argv: argv, Sudo: true})
		return err
	}
	if err := run("systemctl", "daemon-reload"); err != nil {
		return err
	}
	if err := run("systemctl", "enable", unit); err != nil {
		return err
	}
	if restart {
		return run("systemctl", "restart", unit)
	}
	return run("systemctl", "start", unit)
}
