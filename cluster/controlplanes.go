package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"time"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/etcdcluster"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/phases"
)

// firstControlPlane is the control plane init builds the cluster on: with
// one, that one; with several, the first in the file's order that runs a
// control plane already (a re-run, or a cluster whose first host was
// replaced), else the file's first.
func firstControlPlane(ctx context.Context, c *config.Cluster, o ConnectOptions) (config.Host, error) {
	cps := c.ControlPlanes()
	if len(cps) == 0 {
		return config.Host{}, fmt.Errorf("the cluster file has no control-plane host")
	}
	if len(cps) == 1 {
		return cps[0], nil
	}
	for _, n := range cps {
		h, err := Connect(ctx, n, o)
		if err != nil {
			continue
		}
		_, err = h.Stat(ctx, layout.ManifestsDir+"/etcd.yaml")
		h.Close()
		if err == nil {
			return n, nil
		}
	}
	return cps[0], nil
}

// JoinControlPlanes joins the cluster file's other control planes, one at
// a time in the file's order, through the SSH connections kforge holds:
// each gets the shared secrets from the control plane d ran on, its etcd
// joins as a learner and is promoted, then its API server, controller
// manager and scheduler start. A control plane that runs already
// converges. One that fails and had not joined before is rolled back: its
// etcd member is removed and the host reset. The etcd members and every
// API server's readiness are printed at the end.
func JoinControlPlanes(ctx context.Context, o InitOptions, c *config.Cluster, d *phases.Data, first config.Host) error {
	var others []config.Host
	for _, n := range c.ControlPlanes() {
		if n.Address != first.Address || n.Local != first.Local {
			others = append(others, n)
		}
	}
	if len(others) == 0 {
		return nil
	}
	o.Out.Infof("\nJoining %d more control plane(s), one at a time", len(others))
	var results []HostResult
	for _, n := range others {
		start := time.Now()
		r := joinControlPlane(ctx, o, c, d, n)
		r.Host, r.Duration = n.Address, time.Since(start)
		results = append(results, r)
		if r.Err == nil {
			o.Out.Infof("  control plane %s: %s in %s", n.Address, r.Outcome, r.Duration.Round(100*time.Millisecond))
		}
	}
	printControlPlaneHealth(ctx, o, c, d)
	return summarize(o.Out, "Control planes", results)
}

func joinControlPlane(ctx context.Context, o InitOptions, c *config.Cluster, src *phases.Data, n config.Host) HostResult {
	h, err := Connect(ctx, n, o.Connect)
	if err != nil {
		return HostResult{Outcome: "failed", Err: fmt.Errorf("connect: %w", err)}
	}
	defer h.Close()
	_, err = h.Stat(ctx, layout.ManifestsDir+"/etcd.yaml")
	joined := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return HostResult{Outcome: "failed", Err: err}
	}
	if err := phases.CopyRegistryAuth(ctx, src.Host, h); err != nil {
		return HostResult{Outcome: "failed", Err: fmt.Errorf("registry credentials: %w", err)}
	}
	d, err := phases.New(ctx, phases.Config{
		Command: "init", Cluster: c, Node: n, Host: h, Out: o.Out,
		KforgeBinary: src.KforgeBinary, StagingDir: src.StagingDir,
		IgnorePreflight: o.IgnorePreflight, AllowUnsignedBundle: o.Trust.AllowUnsigned,
		ControlPlaneSource: src.Host,
	})
	if err != nil {
		return HostResult{Outcome: "failed", Err: err}
	}
	err = phases.Execute(ctx, phases.JoinControlPlane(), d, phases.Options{})
	if err == nil {
		outcome := "joined as " + d.NodeName
		if joined {
			outcome = "already a control plane (" + d.NodeName + "), converged"
		}
		return HostResult{Outcome: outcome}
	}
	if joined || ctx.Err() != nil {
		return HostResult{Outcome: "failed", Err: err}
	}
	if rerr := rollbackControlPlane(ctx, src, d); rerr != nil {
		return HostResult{Outcome: "failed", Err: fmt.Errorf("%w\nthe rollback failed too: %v", err, rerr)}
	}
	return HostResult{Outcome: "failed, rolled back", Err: fmt.Errorf("%w\nrolled back: the host's etcd member was removed and the host reset", err)}
}

// rollbackControlPlane undoes a control-plane join that failed: its etcd
// member leaves (through the control plane it joined through, since its
// own may never have started) and the host is reset.
func rollbackControlPlane(ctx context.Context, src, d *phases.Data) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	ec, err := etcdcluster.Dial(ctx, src.Host)
	if err != nil {
		return err
	}
	defer ec.Close()
	peer := "https://" + net.JoinHostPort(d.AdvertiseAddress, strconv.Itoa(layout.EtcdPeerPort))
	// The member is this run's own: a learner, or a voter that never
	// served; the others' quorum does not depend on it.
	if err := etcdcluster.Remove(ctx, ec, peer, func(etcdcluster.Member) bool { return true }, true); err != nil {
		return err
	}
	rd, err := phases.New(ctx, phases.Config{Command: "reset", Cluster: config.Default(), Node: d.Node, Host: d.Host, Out: d.Out})
	if err != nil {
		return err
	}
	return phases.Execute(ctx, phases.Reset(), rd, phases.Options{Skip: []string{"etcd-leave"}})
}

// printControlPlaneHealth prints etcd's members with their health and the
// leader, and each control plane's API server's /readyz.
func printControlPlaneHealth(ctx context.Context, o InitOptions, c *config.Cluster, d *phases.Data) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if id, err := runningContainer(ctx, d.Host, "etcd"); err != nil {
		o.Out.Infof("  ! etcd members: %v", err)
	} else if members, err := etcdMembers(ctx, d.Host, id, etcdcluster.LocalEndpoint); err != nil {
		o.Out.Infof("  ! etcd members: %v", err)
	} else {
		var b strings.Builder
		printMembers(&b, members)
		o.Out.Infof("\netcd members:\n%s", strings.TrimRight(b.String(), "\n"))
	}
	o.Out.Infof("API servers:")
	for _, cp := range c.ControlPlanes() {
		server := "https://" + net.JoinHostPort(phases.ControlPlaneAddress(cp), strconv.Itoa(layout.APIServerPort))
		o.Out.Infof("  %s /readyz: %s", server, apiServerReadiness(ctx, d.Host, server))
	}
}

// apiServerReadiness asks one API server's /readyz with admin.conf's
// credentials.
func apiServerReadiness(ctx context.Context, h host.Host, server string) string {
	kc, err := kube.FromHost(ctx, h, layout.AdminConf, server)
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, err := kc.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return "not ready: " + err.Error()
	}
	return strings.TrimSpace(string(body))
}
