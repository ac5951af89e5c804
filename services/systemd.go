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
	h host.Host
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
