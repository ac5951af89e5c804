package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/doctor"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/messages"
	"kforge.dev/kforge/providers/ssh"
)

// DoctorOptions are the inputs of `kforge doctor`.
type DoctorOptions struct {
	Connect ConnectOptions
	// ConfigFile checks every host of a cluster file, over SSH, and the
	// cluster through its control plane.
	ConfigFile string
	JSON       bool
	Parallel   int
	Printer    *messages.Printer
	Out        io.Writer
}

// Doctor runs doctor's host checks on this machine or on every host of the
// cluster file, and its cluster checks through the control plane's admin
// kubeconfig when there is one; it prints what it found and fails when it
// found something.
func Doctor(ctx context.Context, o DoctorOptions) error {
	c, err := LoadConfigOrDefault(o.ConfigFile)
	if err != nil {
		return err
	}
	pool := ssh.NewPool()
	defer pool.Close()
	o.Connect.Pool = pool
	var mu sync.Mutex
	var findings []doctor.Finding
	var notes []string
	cp, _ := c.ControlPlane()
	forEachHost(ctx, c.Hosts, max(1, o.Parallel), func(ctx context.Context, n config.Host) HostResult {
		h, err := Connect(ctx, n, o.Connect)
		if err != nil {
			mu.Lock()
			notes = append(notes, fmt.Sprintf("%s: cannot connect: %v", n.Address, err))
			mu.Unlock()
			return HostResult{Outcome: "failed", Err: err}
		}
		defer h.Close()
		var now time.Time
		if o.ConfigFile != "" && !n.Local {
			now = time.Now()
		}
		fs, err := doctor.Host(ctx, h, now)
		var cfs []doctor.Finding
		var cerr error
		if err == nil && indexOf(c.Hosts, n) == indexOf(c.Hosts, cp) {
			cfs, cerr = clusterFindings(ctx, h)
		}
		mu.Lock()
		defer mu.Unlock()
		findings = append(findings, fs...)
		findings = append(findings, cfs...)
		if err != nil {
			notes = append(notes, err.Error())
		}
		if cerr != nil {
			notes = append(notes, "the cluster checks did not run: "+cerr.Error())
		}
		return HostResult{Outcome: "checked"}
	})
	if o.JSON {
		if err := writeJSON(o.Out, struct {
			Findings []doctor.Finding `json:"findings"`
			Notes    []string         `json:"notes,omitempty"`
		}{findings, notes}); err != nil {
			return err
		}
	} else {
		p := o.Printer
		if p == nil {
			p = messages.English()
		}
		for _, f := range findings {
			fmt.Fprintln(o.Out, f.Localized(p))
		}
		for _, n := range notes {
			fmt.Fprintln(o.Out, p.T("doctor.note", nil), n)
		}
		if len(findings) == 0 && len(notes) == 0 {
			fmt.Fprintln(o.Out, p.T("doctor.nothing", nil))
		}
	}
	switch {
	case len(findings) > 0:
		return fmt.Errorf("kforge doctor found %d problem(s)", len(findings))
	case len(notes) > 0:
		return errors.New("kforge doctor could not run every check")
	}
	return nil
}

// clusterFindings runs the cluster checks with the admin kubeconfig on h;
// a host without one (a worker, a reset machine) has no cluster to check.
func clusterFindings(ctx context.Context, h host.Host) ([]doctor.Finding, error) {
	if ok, err := host.Exists(ctx, h, layout.AdminConf); err != nil || !ok {
		return nil, err
	}
	client, err := kube.FromHost(ctx, h, layout.AdminConf, "")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return doctor.Cluster(ctx, client.Kube)
}
