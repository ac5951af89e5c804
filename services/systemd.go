package services

import (
	"context"
	"fmt"
	"path"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// systemd runs services as systemd units. containerd's unit comes with the
// OS package; the kubelet's unit and drop-in are kforge's, written by the
// kubelet phase before Ensure.
type systemd struct {
	h    host.Host
	self string
}

func (m *systemd) unit(s Service) string {
	if s.Unit != "" {
		return s.Unit
	}
	return s.Name
}

func (m *systemd) systemctl(ctx context.Context, args ...string) error {
	_, err := m.h.Run(ctx, host.Cmd{Argv: append([]string{"systemctl"}, args...), Sudo: true})
	return err
}

func (m *systemd) Ensure(ctx context.Context, s Service, changed bool) error {
	u := m.unit(s)
	if err := m.systemctl(ctx, "daemon-reload"); err != nil {
		return err
	}
	if err := m.systemctl(ctx, "enable", u); err != nil {
		return err
	}
	if changed {
		return m.systemctl(ctx, "restart", u)
	}
	return m.systemctl(ctx, "start", u)
}

func (m *systemd) Stop(ctx context.Context, s Service) error {
	if s.Unit == "" {
		return nil
	}
	_, err := m.h.Run(ctx, host.Cmd{Argv: []string{"sh", "-c", `systemctl disable --now "$1" 2>/dev/null; true`, "sh", s.Unit}, Sudo: true})
	return err
}

func (m *systemd) Restart(ctx context.Context, s Service) error {
	return m.Ensure(ctx, s, true)
}

// Owns: kforge writes its units to layout.SystemdUnitDir; the OS's live
// under /lib/systemd/system.
func (m *systemd) Owns(ctx context.Context, name string) (bool, error) {
	return host.Exists(ctx, m.h, path.Join(layout.SystemdUnitDir, name+".service"))
}

func (m *systemd) Log(ctx context.Context, name string, lines int) string {
	out, err := host.Output(ctx, m.h, "journalctl", "-u", name, "-n", fmt.Sprint(lines), "--no-pager")
	if err != nil {
		return fmt.Sprintf("(no journal of %s: %v)", name, err)
	}
	return out
}

func (m *systemd) Shutdown(context.Context) error { return nil }

// EnsureJob writes j as a oneshot service and a timer that starts it one
// period after boot and one period after each run (with up to a tenth of
// a period of random delay, so that hosts do not renew at once), then
// enables the timer.
func (m *systemd) EnsureJob(ctx context.Context, j Job) error {
	if err := installSelf(ctx, m.h, m.self); err != nil {
		return err
	}
	service := fmt.Sprintf(`# Written by kforge.
[Unit]
Description=kforge job %[1]s

[Service]
Type=oneshot
ExecStart=%[2]s
`, j.Name, host.ShellQuote(j.Argv))
	timer := fmt.Sprintf(`# Written by kforge.
[Unit]
Description=kforge job %[1]s, every %[2]s

[Timer]
OnBootSec=%[3]ds
OnUnitActiveSec=%[3]ds
RandomizedDelaySec=%[4]ds

[Install]
WantedBy=timers.target
`, j.Name, j.Every, int64(j.Every.Seconds()), int64(j.Every.Seconds()/10))
	base := path.Join(layout.SystemdUnitDir, j.Name)
	if err := m.h.WriteFile(ctx, base+".service", []byte(service), layout.SecretMode); err != nil {
		return err
	}
	if err := m.h.WriteFile(ctx, base+".timer", []byte(timer), layout.SecretMode); err != nil {
		return err
	}
	if err := m.systemctl(ctx, "daemon-reload"); err != nil {
		return err
	}
	return m.systemctl(ctx, "enable", "--now", j.Name+".timer")
}

func (m *systemd) RemoveJob(ctx context.Context, name string) error {
	base := path.Join(layout.SystemdUnitDir, name)
	if ok, err := host.Exists(ctx, m.h, base+".timer"); err != nil || !ok {
		return err
	}
	if _, err := m.h.Run(ctx, host.Cmd{Argv: []string{"sh", "-c", `systemctl disable --now "$1.timer" 2>/dev/null; true`, "sh", name}, Sudo: true}); err != nil {
		return err
	}
	for _, f := range []string{base + ".timer", base + ".service"} {
		if err := m.h.Remove(ctx, f); err != nil {
			return err
		}
	}
	return m.systemctl(ctx, "daemon-reload")
}

func (m *systemd) Where(name string) (string, string) {
	return "systemd unit " + name + ".service", "journalctl -u " + name
}
