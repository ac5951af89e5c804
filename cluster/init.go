package cluster

import (
	"context"
	"fmt"
	"os"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host/dryrun"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/reporter"
)

// InitOptions are the inputs of `kforge init`.
type InitOptions struct {
	ConfigFile string
	Overrides  Overrides
	Connect    ConnectOptions
	// DryRun writes every file under OutputDir and changes nothing.
	DryRun    bool
	OutputDir string
	// Phase runs only this phase; SkipPhases leaves some out.
	Phase      string
	SkipPhases []string
	Out        *reporter.Reporter
}

// Init builds the control plane on the cluster's control-plane host.
func Init(ctx context.Context, o InitOptions) error {
	list := phases.Init()
	if err := phases.Check(list, "--skip-phases", o.SkipPhases...); err != nil {
		return err
	}
	c, err := LoadConfig(o.ConfigFile, o.Overrides)
	if err != nil {
		return err
	}
	node, _ := c.ControlPlane()
	h, err := Connect(ctx, node, o.Connect)
	if err != nil {
		return err
	}
	defer h.Close()
	var plan *dryrun.Host
	if o.DryRun {
		if o.OutputDir == "" {
			if o.OutputDir, err = os.MkdirTemp("", "kforge-dry-run-"); err != nil {
				return err
			}
		}
		plan = dryrun.New(h, o.OutputDir)
		h = plan
	}
	d := &phases.Data{Cluster: c, Node: node, Host: h, Out: o.Out}
	if err := d.Prepare(ctx); err != nil {
		return err
	}
	o.Out.Logf("host %s: %+v", h.Name(), d.Facts)
	if err := phases.Execute(ctx, list, d, phases.Options{Only: o.Phase, Skip: o.SkipPhases}); err != nil {
		return fmt.Errorf("%w\nFix the cause and run the same command again: finished work is kept and reused", err)
	}
	if plan != nil {
		plan.Plan().Write(o.Out.Writer(), o.OutputDir)
		return nil
	}
	o.Out.Total("kforge init finished")
	return nil
}

func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(config.ExpandHome(path))
	if err != nil {
		return nil, fmt.Errorf("cluster file: %w", err)
	}
	return b, nil
}
