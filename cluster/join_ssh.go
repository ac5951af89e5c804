package cluster

import (
	"context"
	"fmt"
	"os"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/phases"
	localhost "kforge.dev/kforge/providers/local"
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
	// ControlPlane joins the host as a further control plane (kubeadm's
	// --control-plane) instead of a worker.
	ControlPlane bool
	// IgnorePreflight turns the named preflight failures into warnings.
	IgnorePreflight []string
	Out             *reporter.Reporter
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
	if o.ControlPlane {
		return joinControlPlaneSSH(ctx, o, worker)
	}
	c := config.Default()
	c.Hosts = append(c.Hosts, worker)
	if err := o.applyArtifacts(c); err != nil {
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

// joinControlPlaneSSH joins one more control plane from the control plane
// this command runs on, as init -f joins the cluster file's: the cluster's
// own settings come from its uploaded cluster file, to which the host is
// added (and stored again) when it is not listed.
func joinControlPlaneSSH(ctx context.Context, o JoinSSHOptions, n config.Host) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	local := localhost.New()
	admin, err := kube.FromHost(ctx, local, layout.AdminConf, "")
	if err != nil {
		return err
	}
	c, err := phases.UploadedCluster(ctx, admin.Kube, admin.Server())
	if err != nil {
		return err
	}
	if !c.HA() {
		return fmt.Errorf("this cluster was built with one control plane: its API server certificate and its nodes do not use node-local load balancers, which more control planes need; list 3 (or 5) control planes in the cluster file and run kforge init -f")
	}
	n.Role = config.RoleControlPlane
	listed := false
	for i, h := range c.Hosts {
		if h.Address == n.Address {
			c.Hosts[i].Role, c.Hosts[i].SSH, c.Hosts[i].Sudo, listed = config.RoleControlPlane, n.SSH, n.Sudo, true
			n = c.Hosts[i]
		}
	}
	if !listed {
		c.Hosts = append(c.Hosts, n)
	}
	if err := o.applyArtifacts(c); err != nil {
		return err
	}
	pool := ssh.NewPool()
	defer pool.Close()
	o.Connect.Pool = pool
	src, err := phases.New(ctx, phases.Config{Command: "join", Cluster: c, Node: config.Host{Local: true, Role: config.RoleControlPlane}, Host: local, Out: o.Out,
		KforgeBinary: self, StagingDir: stagingDir(), AllowUnsignedBundle: o.Trust.AllowUnsigned})
	if err != nil {
		return err
	}
	if !listed {
		// Later joins and init -f runs see the new control plane.
		if err := phases.Execute(ctx, phases.Init(), src, phases.Options{Only: "upload-config"}); err != nil {
			return err
		}
	}
	io := InitOptions{Connect: o.Connect, Out: o.Out, Trust: o.Trust, IgnorePreflight: o.IgnorePreflight}
	r := joinControlPlane(ctx, io, c, src, n)
	if r.Err != nil {
		return fmt.Errorf("control plane %s: %s: %w", n.Address, r.Outcome, r.Err)
	}
	o.Out.Infof("control plane %s: %s", n.Address, r.Outcome)
	printControlPlaneHealth(ctx, io, c, src)
	o.Out.Infof("The other nodes' load balancers send to it once kforge init -f runs with it in the cluster file.")
	o.Out.Total("kforge join finished")
	return nil
}

// applyArtifacts sets c's bundle and trusted keys from the flags.
func (o JoinSSHOptions) applyArtifacts(c *config.Cluster) error {
	if o.Bundle != "" {
		if _, err := os.Stat(o.Bundle); err != nil {
			return fmt.Errorf("--bundle: %w", err)
		}
		c.Artifacts.Bundle = o.Bundle
	}
	return o.Trust.Apply(c)
}
