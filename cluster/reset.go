package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/providers/ssh"
	"kforge.dev/kforge/reporter"
)

// ResetOptions are the inputs of `kforge reset`.
type ResetOptions struct {
	Connect ConnectOptions
	// Force skips the confirmation question.
	Force bool
	// In answers the confirmation question.
	In io.Reader
	// Kubeconfig is the user's kubeconfig the kforge context is removed
	// from; "" means $KUBECONFIG's first file or ~/.kube/config.
	Kubeconfig string
	// ConfigFile resets every host of a cluster file.
	ConfigFile string
	// SSH resets one host, [user@]host[:port], after draining and deleting
	// its Node; Target holds the SSH settings for it.
	SSH    string
	Target SSHOptions
	// AdminKubeconfig reaches the cluster for the drain.
	AdminKubeconfig string
	Parallel        int
	Phase           string
	SkipPhases      []string
	Out             *reporter.Reporter
}

// Reset undoes kforge init, join or up: on this machine, on one host over
// SSH (after draining and deleting its Node), or on every host of a
// cluster file in parallel.
func Reset(ctx context.Context, o ResetOptions) error {
	if err := phases.Check(phases.Reset(), "--skip-phases", o.SkipPhases...); err != nil {
		return err
	}
	what := "this machine's Kubernetes node"
	switch {
	case o.ConfigFile != "":
		what = "every host of " + o.ConfigFile
	case o.SSH != "":
		what = "the Kubernetes node on " + o.SSH
	}
	if !o.Force && !confirm(o.In, o.Out.Writer(), "kforge reset removes "+what+": its pods, /etc/kubernetes, /var/lib/kubelet, /var/lib/etcd and the CNI state. Continue? [y/N] ") {
		return fmt.Errorf("reset aborted; pass --force to reset without asking")
	}
	pool := ssh.NewPool()
	defer pool.Close()
	o.Connect.Pool = pool
	switch {
	case o.ConfigFile != "":
		return resetCluster(ctx, o)
	case o.SSH != "":
		return resetSSH(ctx, o)
	}
	if err := resetHost(ctx, config.Default().Hosts[0], o, o.Out); err != nil {
		return err
	}
	if err := removeUserContext(o, nil); err != nil {
		return err
	}
	o.Out.Total("kforge reset finished")
	return nil
}

// removeUserContext takes the "kforge" context out of the kubeconfig that
// up --local or init --merge-kubeconfig added it to.
// With ours, only a context whose server passes it.
func removeUserContext(o ResetOptions, ours func(server string) bool) error {
	kc := UserKubeconfig(o.Kubeconfig)
	removed, err := kc.RemoveIf(ContextName, ours)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", kc.Path, err)
	}
	if removed {
		o.Out.Infof("  removed the %q context from %s%s", ContextName, kc.Path, kc.ownerNote())
	}
	return nil
}

// resetHost runs reset's phases on one host (but those in skip).
func resetHost(ctx context.Context, n config.Host, o ResetOptions, out *reporter.Reporter, skip ...string) error {
	h, err := Connect(ctx, n, o.Connect)
	if err != nil {
		return err
	}
	defer h.Close()
	d, err := phases.New(ctx, phases.Config{Command: "reset", Cluster: config.Default(), Node: n, Host: h, Out: out, Force: o.Force})
	if err != nil {
		return err
	}
	if err := phases.Execute(ctx, phases.Reset(), d, phases.Options{Only: o.Phase, Skip: append(slices.Clone(o.SkipPhases), skip...)}); err != nil {
		return fmt.Errorf("%w\nFix the cause and run kforge reset again", err)
	}
	return nil
}

// resetCluster resets every host of the cluster file: the workers in
// parallel, then the control planes one at a time, the file's last first,
// each one's etcd member leaving the others before it goes.
func resetCluster(ctx context.Context, o ResetOptions) error {
	c, err := LoadConfig(o.ConfigFile, Overrides{})
	if err != nil {
		return err
	}
	reset := func(ctx context.Context, n config.Host) HostResult {
		if err := resetHost(ctx, n, o, o.Out.ForHost(n.Address)); err != nil {
			return HostResult{Outcome: "failed", Err: err}
		}
		return HostResult{Outcome: "reset"}
	}
	results := forEachHost(ctx, c.Workers(), o.Parallel, reset)
	cps := c.ControlPlanes()
	slices.Reverse(cps)
	results = append(results, forEachHost(ctx, cps, 1, reset)...)
	if err := summarize(o.Out, "Reset", results); err != nil {
		return err
	}
	// The context init --merge-kubeconfig added, when it names one of
	// this cluster's hosts or its endpoint.
	hosts := map[string]bool{certs.EndpointHost(c.ControlPlaneEndpoint): c.ControlPlaneEndpoint != ""}
	for _, h := range c.Hosts {
		hosts[h.Address], hosts[h.NodeIP] = true, h.NodeIP != ""
	}
	ours := func(server string) bool {
		u, err := url.Parse(server)
		return err == nil && hosts[u.Hostname()]
	}
	if err := removeUserContext(o, ours); err != nil {
		return err
	}
	o.Out.Total("kforge reset finished")
	return nil
}

// resetSSH drains and deletes the host's Node through this machine's admin
// kubeconfig (when there is one), then resets the host.
func resetSSH(ctx context.Context, o ResetOptions) error {
	n, err := SSHTarget(o.SSH, o.Target)
	if err != nil {
		return err
	}
	h, err := Connect(ctx, n, o.Connect)
	if err != nil {
		return err
	}
	name, err := host.Probe(ctx, h, "hostname")
	h.Close()
	if err != nil {
		return err
	}
	// A control plane's etcd member leaves first: a removal that would
	// cost the others their quorum is refused before anything changes.
	if err := resetHost(ctx, n, ResetOptions{Connect: o.Connect, Force: o.Force, Phase: "etcd-leave"}, o.Out); err != nil {
		return err
	}
	if admin, err := os.ReadFile(o.AdminKubeconfig); err == nil {
		c, err := kube.New(admin, "")
		if err != nil {
			return err
		}
		if err := DrainAndDelete(ctx, c, name, o.Out); err != nil {
			return err
		}
	} else {
		o.Out.Infof("  ! no %s here: node %s is not drained or deleted from the cluster", o.AdminKubeconfig, name)
	}
	if err := resetHost(ctx, n, o, o.Out, "etcd-leave"); err != nil {
		return err
	}
	o.Out.Total("kforge reset finished")
	return nil
}

func confirm(in io.Reader, out io.Writer, question string) bool {
	if in == nil {
		return false
	}
	fmt.Fprint(out, question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}
