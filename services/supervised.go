package services

import (
	"context"
	"fmt"
	"path"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/supervisor"
)

// supervised runs services under kforge's own supervisor (`kforge
// supervise run`), for hosts without systemd as PID 1. kforge installs
// itself on the host once per run for the supervisor to run from.
type supervised struct {
	h         host.Host
	self      string
	installed bool
}

// Ensure installs the service's file and (re)starts the supervisor, which
// restarts a service whose argv or environment changed. A hash of the
// configuration files is part of the environment, so a changed file
// restarts the service and an unchanged one leaves it alone; changed is
// not needed.
func (m *supervised) Ensure(ctx context.Context, s Service, _ bool) error {
	argv, err := absArgv(ctx, m.h, s.Argv)
	if err != nil {
		return err
	}
	sum, err := configSum(ctx, m.h, s.Config)
	if err != nil {
		return err
	}
	sv := supervisor.Service{Name: s.Name, Argv: argv, Env: map[string]string{"KFORGE_CONFIG_SHA256": sum}}
	for k, v := range s.Env {
		sv.Env[k] = v
	}
	if s.After != "" {
		sv.After = []string{s.After}
	}
	if s.ReadySocket != "" {
		sv.Ready = &supervisor.Ready{Socket: s.ReadySocket}
	}
	if err := m.install(ctx); err != nil {
		return err
	}
	if err := supervisor.Install(ctx, m.h, layout.SupervisorDir, sv); err != nil {
		return err
	}
	if err := supervisor.Start(ctx, m.h, layout.KforgeBinary, layout.SupervisorDir); err != nil {
		return err
	}
	return supervisor.Wait(ctx, m.h, layout.KforgeBinary, layout.SupervisorDir, s.Name)
}

// install puts kforge's own binary on the host, once per run (the upload
// reads both copies to skip an identical one).
func (m *supervised) install(ctx context.Context) error {
	if m.installed {
		return nil
	}
	if err := installSelf(ctx, m.h, m.self); err != nil {
		return err
	}
	m.installed = true
	return nil
}

func (m *supervised) Stop(ctx context.Context, s Service) error {
	if ok, err := m.Owns(ctx, s.Name); err != nil || !ok {
		return err
	}
	if err := supervisor.Uninstall(ctx, m.h, layout.SupervisorDir, s.Name); err != nil {
		return err
	}
	if ok, err := host.Exists(ctx, m.h, layout.KforgeBinary); err != nil || !ok {
		return err
	}
	// A running supervisor re-reads its services and stops the removed one.
	return supervisor.Start(ctx, m.h, layout.KforgeBinary, layout.SupervisorDir)
}

func (m *supervised) Restart(ctx context.Context, s Service) error {
	if err := m.Stop(ctx, s); err != nil {
		return err
	}
	return m.Ensure(ctx, s, false)
}

func (m *supervised) Owns(ctx context.Context, name string) (bool, error) {
	return host.Exists(ctx, m.h, supervisor.ServiceFile(layout.SupervisorDir, name))
}

func (m *supervised) Log(ctx context.Context, name string, lines int) string {
	p := path.Join(layout.LogDir, name+".log")
	b, err := m.h.ReadFile(ctx, p)
	if err != nil {
		return fmt.Sprintf("(no log at %s: %v)", p, err)
	}
	return tail(string(b), lines)
}

func (m *supervised) Shutdown(ctx context.Context) error {
	if ok, err := host.Exists(ctx, m.h, layout.KforgeBinary); err != nil || !ok {
		return err
	}
	return supervisor.Stop(ctx, m.h, layout.KforgeBinary, layout.SupervisorDir)
}

// EnsureJob installs j as a periodic job of the supervisor.
func (m *supervised) EnsureJob(ctx context.Context, j Job) error {
	if err := m.install(ctx); err != nil {
		return err
	}
	if err := supervisor.Install(ctx, m.h, layout.SupervisorDir, supervisor.Service{Name: j.Name, Argv: j.Argv, Every: j.Every}); err != nil {
		return err
	}
	if err := supervisor.Start(ctx, m.h, layout.KforgeBinary, layout.SupervisorDir); err != nil {
		return err
	}
	return supervisor.Wait(ctx, m.h, layout.KforgeBinary, layout.SupervisorDir, j.Name)
}

func (m *supervised) RemoveJob(ctx context.Context, name string) error {
	return m.Stop(ctx, Service{Name: name})
}

func (m *supervised) Where(name string) (string, string) {
	return "service of kforge's supervisor (" + supervisor.ServiceFile(layout.SupervisorDir, name) + ")", path.Join(layout.LogDir, name+".log")
}
