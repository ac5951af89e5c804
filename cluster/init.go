package cluster

import (
	"context"
	"fmt"
	"os"
	"time"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host/dryrun"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/providers/ssh"
	"kforge.dev/kforge/reporter"
)

// InitOptions are the inputs of `kforge init`.
type InitOptions struct {
	ConfigFile string
	Overrides  Overrides
	Connect    ConnectOptions
	// Bundle is a kforge bundle to install binaries and images from.
	Bundle string
	Trust  Trust
	// DryRun writes every file under OutputDir and changes nothing.
	DryRun    bool
	OutputDir string
	// Phase runs only this phase; SkipPhases leaves some out.
	Phase      string
	SkipPhases []string
	// Parallel is how many workers are joined at once.
	Parallel int
	// KubeconfigOut, when set, receives a copy of admin.conf (0600).
	KubeconfigOut string
	// MergeKubeconfig adds the "kforge" context to the user's kubeconfig,
	// as up does (the sudo user's under sudo).
	MergeKubeconfig bool
	// IgnorePreflight turns the named preflight failures into warnings.
	IgnorePreflight []string
	Out             *reporter.Reporter
}

// Init builds the control plane on the cluster's control-plane host.
func Init(ctx context.Context, o InitOptions) error {
	c, err := LoadConfig(o.ConfigFile, o.Overrides)
	if err != nil {
		return err
	}
	pool := ssh.NewPool()
	defer pool.Close()
	o.Connect.Pool = pool
	first, err := firstControlPlane(ctx, c, o.Connect)
	if err != nil {
		return err
	}
	d, err := initControlPlane(ctx, o, c, first, false)
	if err != nil {
		return err
	}
	defer d.Host.Close()
	if o.DryRun || o.Phase != "" {
		return nil
	}
	if o.KubeconfigOut != "" {
		if err := copyAdmin(ctx, d, o.KubeconfigOut); err != nil {
			return err
		}
		o.Out.Infof("admin kubeconfig written to %s", o.KubeconfigOut)
	}
	if o.MergeKubeconfig {
		admin, err := d.Host.ReadFile(ctx, layout.AdminConf)
		if err != nil {
			return err
		}
		kc := UserKubeconfig("")
		if err := kc.Merge(admin, ContextName); err != nil {
			return fmt.Errorf("--merge-kubeconfig %s: %w", kc.Path, err)
		}
		o.Out.Infof("kubectl now uses the %q context in %s%s", ContextName, kc.Path, kc.ownerNote())
	}
	if err := JoinControlPlanes(ctx, o, c, d, first); err != nil {
		return err
	}
	if err := JoinWorkers(ctx, o, c, d, o.Parallel, true); err != nil {
		return err
	}
	o.Out.Total("kforge init finished")
	return nil
}

// copyAdmin writes the control plane's admin.conf to a local file, 0600,
// atomically.
func copyAdmin(ctx context.Context, d *phases.Data, dst string) error {
	b, err := d.Host.ReadFile(ctx, layout.AdminConf)
	if err != nil {
		return err
	}
	if err := writePrivate(config.ExpandHome(dst), b, -1, -1); err != nil {
		return fmt.Errorf("--kubeconfig-out: %w", err)
	}
	return nil
}

// initControlPlane runs init's phases on node, the control plane of c that
// starts the cluster (or runs it already), and returns the run's data.
func initControlPlane(ctx context.Context, o InitOptions, c *config.Cluster, node config.Host, schedulable bool) (*phases.Data, error) {
	list := phases.Init()
	if err := phases.Check(list, "--skip-phases", o.SkipPhases...); err != nil {
		return nil, err
	}
	if o.Bundle != "" {
		c.Artifacts.Bundle = o.Bundle
	}
	if b := c.Artifacts.Bundle; b != "" {
		if _, err := os.Stat(config.ExpandHome(b)); err != nil {
			return nil, fmt.Errorf("--bundle: %w (make artifacts builds one and prints its path)", err)
		}
		c.Artifacts.Bundle = config.ExpandHome(b)
	}
	if err := o.Trust.Apply(c); err != nil {
		return nil, err
	}
	h, err := Connect(ctx, node, o.Connect)
	if err != nil {
		return nil, err
	}
	closeHost := true
	defer func() {
		if closeHost {
			h.Close()
		}
	}()
	var plan *dryrun.Host
	if o.DryRun {
		if o.OutputDir == "" {
			if o.OutputDir, err = os.MkdirTemp("", "kforge-dry-run-"); err != nil {
				return nil, err
			}
		}
		plan = dryrun.New(h, o.OutputDir)
		h = plan
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	command := "init"
	if schedulable {
		command = "up"
	}
	d, err := phases.New(ctx, phases.Config{
		Command: command, Cluster: c, Node: node, Host: h, Out: o.Out,
		Schedulable: schedulable, KforgeBinary: self, StagingDir: stagingDir(),
		IgnorePreflight: o.IgnorePreflight, AllowUnsignedBundle: o.Trust.AllowUnsigned,
	})
	if err != nil {
		return nil, err
	}
	o.Out.Logf("host %s: %+v", h.Name(), d.Facts)
	if err := phases.Execute(ctx, list, d, phases.Options{Only: o.Phase, Skip: o.SkipPhases, NoAPI: o.DryRun}); err != nil {
		return nil, fmt.Errorf("%w\nFix the cause and run the same command again: finished work is kept and reused", err)
	}
	closeHost = false // the caller closes d.Host
	if plan != nil {
		plan.Plan().Write(o.Out.Writer(), o.OutputDir)
		return d, nil
	}
	if o.Phase == "" && d.CNIPlugin() != "bridge" {
		join, err := d.JoinCommand(ctx)
		if err != nil {
			return nil, err
		}
		expiry := ""
		if t := d.Results.TokenExpires; !t.IsZero() {
			expiry = fmt.Sprintf(" (the token expires at %s, in %s)", t.UTC().Format(time.RFC3339), time.Until(t).Round(time.Minute))
		}
		o.Out.Infof("\nJoin workers by running this on each as root%s:\n  %s", expiry, join)
	}
	return d, nil
}

// stagingDir is where verified bundles are unpacked on this machine.
func stagingDir() string {
	if dir := os.Getenv("KFORGE_CACHE"); dir != "" {
		return dir + "/staging"
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return dir + "/kforge/staging"
	}
	return ""
}

func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(config.ExpandHome(path))
	if err != nil {
		return nil, fmt.Errorf("cluster file: %w", err)
	}
	return b, nil
}
