package cluster

import (
	"context"
	"fmt"
	"os"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/providers/ssh"
	"kforge.dev/kforge/reporter"
)

// JoinSSHOptions are the inputs of `kforge join --ssh user@host`, run on
// the control plane.
type JoinSSHOptions struct {
	// Target is [user@]host[:port]; SSH holds its key and known_hosts.
	Target  string
	SSH     SSHOptions
	Bundle  string
	Trust   Trust
	Connect ConnectOptions
	Out     *reporter.Reporter
}

// JoinSSH adds one worker from the control plane this command runs on: it
// makes sure a valid bootstrap token exists (reusing the stored one),
// then uploads kforge and the bundle to the worker and runs `kforge join`
// there, as init -f does for the cluster file's workers.
func JoinSSH(ctx context.Context, o JoinSSHOptions) error {
	worker, err := SSHTarget(o.Target, o.SSH)
	if err != nil {
		return err
	}
	if _, err := os.Stat(layout.AdminConf); err != nil {
		return fmt.Errorf("kforge join --ssh runs on the control plane, which has %s/admin.conf: %w", layout.KubernetesDir, err)
	}
	c := config.Default()
	c.Hosts = append(c.Hosts, worker)
	if o.Bundle != "" {
		if _, err := os.Stat(o.Bundle); err != nil {
			return fmt.Errorf("--bundle: %w", err)
		}
		c.Artifacts.Bundle = o.Bundle
	}
	if err := o.Trust.Apply(c); err != nil {
		return err
	}
	pool := ssh.NewPool()
	defer pool.Close()
	o.Connect.Pool = pool
	cp, _ := c.ControlPlane()
	h, err := Connect(ctx, cp, o.Connect)
	if err != nil {
		return err
	}
	defer h.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	d, err := phases.New(ctx, phases.Config{Command: "join", Cluster: c, Node: cp, Host: h, Out: o.Out, KforgeBinary: self, AllowUnsignedBundle: o.Trust.AllowUnsigned})
	if err != nil {
		return err
	}
	if err := phases.Execute(ctx, phases.Init(), d, phases.Options{Only: "bootstrap-token"}); err != nil {
		return err
	}
	if err := JoinWorkers(ctx, InitOptions{Connect: o.Connect, Out: o.Out}, c, d, 1, false); err != nil {
		return err
	}
	o.Out.Total("kforge join finished")
	return nil
}
