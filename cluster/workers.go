package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/reporter"
)

// DefaultParallel is how many hosts kforge works on at once: the workers
// fetch their artifacts from the control plane, so this machine sends each
// little more than the commands, and ten SSH sessions at a time cost it
// little.
const DefaultParallel = 10

// HostResult is what happened on one host of a multi-host run.
type HostResult struct {
	Host     string
	Outcome  string // joined, already joined, reset, failed
	Duration time.Duration
	Err      error
}

// remoteKforge puts kforge itself (and the bundle, when there is one) on
// h, skipping identical files, and returns the bundle's path there. A
// bundle for another architecture than h's is refused before anything is
// written to h.
func remoteKforge(ctx context.Context, h host.Host, self, bundleFile string) (string, error) {
	if err := checkBundleArch(ctx, h, bundleFile); err != nil {
		return "", err
	}
	if err := h.Upload(ctx, self, layout.KforgeBinary, layout.ExecMode); err != nil {
		return "", fmt.Errorf("upload kforge: %w", err)
	}
	if bundleFile == "" {
		return "", nil
	}
	dst := path.Join(layout.BundlesDir, filepath.Base(bundleFile))
	if err := h.Upload(ctx, bundleFile, dst, layout.SecretMode); err != nil {
		return "", fmt.Errorf("upload bundle: %w", err)
	}
	// The signature goes with it; the worker checks it before staging.
	sig := bundle.SignaturePath(bundleFile)
	if _, err := os.Stat(sig); err == nil {
		if err := h.Upload(ctx, sig, bundle.SignaturePath(dst), layout.PublicMode); err != nil {
			return "", fmt.Errorf("upload bundle signature: %w", err)
		}
	} else if err := h.Remove(ctx, bundle.SignaturePath(dst)); err != nil {
		return "", fmt.Errorf("remove an old bundle signature: %w", err)
	}
	return dst, nil
}

// checkBundleArch refuses a bundle for another architecture than h's.
func checkBundleArch(ctx context.Context, h host.Host, bundleFile string) error {
	if bundleFile == "" {
		return nil
	}
	m, err := bundle.Inspect(bundleFile)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", bundleFile, err)
	}
	arch, err := host.Probe(ctx, h, "uname", "-m")
	if err != nil {
		return fmt.Errorf("read the host's architecture to check the bundle against it: %w", err)
	}
	if err := m.CheckArch(arch); err != nil {
		return fmt.Errorf("bundle %s: %w", bundleFile, err)
	}
	return nil
}

// StopOnStdinEOFFlag makes a `kforge join` stop when its standard input
// closes. Joins that init -f runs over SSH get it with an input that stays
// open while this kforge runs: when it is killed, the connection drops and
// the worker's join stops too, instead of running on beside the next try.
const StopOnStdinEOFFlag = "stop-on-stdin-eof"

// runPrefixed runs argv on h, relaying its output through out with h's
// name (Reporter.Relay); the output's tail is in the error. The command's
// standard input starts with input (a secret it reads there, never on its
// command line) and stays open until it ends.
func runPrefixed(ctx context.Context, h host.Host, out *reporter.Reporter, argv []string, input string) error {
	// One relay each: a line of stderr never lands inside an event.
	stdout, stderr := out.Relay(h.Name()), out.Relay(h.Name())
	stdin, open := io.Pipe()
	if input != "" {
		// Read by the command first; a host that never reads the stream
		// (a fake) ends the write when the pipe closes below.
		go func() { _, _ = io.WriteString(open, input) }()
	}
	_, err := h.Run(ctx, host.Cmd{Argv: argv, Sudo: true, Stdout: stdout, Stderr: stderr, Stdin: stdin})
	open.Close()
	stdout.Close()
	stderr.Close()
	return err
}

// forEachHost runs fn on every host, at most limit at a time (DefaultParallel
// when limit < 1), and returns the results in the hosts' order, each with
// the host's address and how long fn took. One host failing does not stop
// the others: fn reports failure in its result, never to the group.
func forEachHost(ctx context.Context, hosts []config.Host, limit int, fn func(context.Context, config.Host) HostResult) []HostResult {
	if limit < 1 {
		limit = DefaultParallel
	}
	results := make([]HostResult, len(hosts))
	var g errgroup.Group
	g.SetLimit(limit)
	for i, n := range hosts {
		g.Go(func() error {
			start := time.Now()
			r := fn(ctx, n)
			r.Host, r.Duration = n.Address, time.Since(start)
			results[i] = r
			return nil
		})
	}
	_ = g.Wait() // every function returns nil
	return results
}

// summarize reports each host's result and returns an error naming the
// hosts that failed.
func summarize(out *reporter.Reporter, what string, results []HostResult) error {
	sort.SliceStable(results, func(i, j int) bool { return results[i].Host < results[j].Host })
	var failed []string
	hosts := make([]reporter.HostResult, len(results))
	for i, r := range results {
		if r.Err != nil {
			failed = append(failed, r.Host)
		}
		hosts[i] = reporter.HostResult{Host: r.Host, Outcome: r.Outcome, Duration: r.Duration, Err: r.Err}
	}
	out.Hosts(what, hosts)
	if len(failed) > 0 {
		return fmt.Errorf("%s failed on %d of %d hosts: %s; fix them and run the same command again (finished hosts are skipped)", what, len(failed), len(results), strings.Join(failed, ", "))
	}
	return nil
}

// JoinWorkers joins the cluster file's workers over SSH, in parallel: each
// gets kforge and the bundle (skipped when identical) and runs `kforge
// join` with a token minted for this run, which reaches it on standard
// input and is deleted when the joins end. Workers whose node is already
// Ready are not joined again; with converge (c is the whole cluster file,
// as in init -f) their labels, taints and container runtime configuration
// (registries) are brought to what c says.
func JoinWorkers(ctx context.Context, o InitOptions, c *config.Cluster, d *phases.Data, parallel int, converge bool) (err error) {
	workers := c.Workers()
	if len(workers) == 0 {
		return nil
	}
	args, err := d.JoinArgs(ctx)
	if err != nil {
		return err
	}
	token, deleteToken, err := d.RunToken(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// Also after an interrupt: the token must not outlive the run.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if derr := deleteToken(dctx); derr != nil {
			o.Out.Infof("  ! %v", derr)
		}
	}()
	admin, err := kube.FromHost(ctx, d.Host, layout.AdminConf, "")
	if err != nil {
		return err
	}
	self := d.KforgeBinary
	var srv *artifactServer
	var fetch fetchKforge
	if c.Artifacts.Bundle != "" {
		// The workers fetch kforge and their part of the bundle from the
		// control plane, which has them: this machine sends neither again.
		if srv = startArtifactServer(ctx, d, token, o.Out); srv != nil {
			defer srv.stop()
			if fetch, err = newFetchKforge(ctx, d, srv, self, token); err != nil {
				return err
			}
		}
	}
	joinWorker := func(ctx context.Context, n config.Host) HostResult {
		h, err := Connect(ctx, n, o.Connect)
		if err != nil {
			return HostResult{Outcome: "failed", Err: fmt.Errorf("connect: %w", err)}
		}
		defer h.Close()
		name := n.Name
		if name == "" {
			if name, err = host.Probe(ctx, h, "hostname"); err != nil {
				return HostResult{Outcome: "failed", Err: err}
			}
		}
		if nodeReady(ctx, admin, name) {
			if err := phases.ApplyNodeMetadata(ctx, admin.Kube, name, n); err != nil {
				return HostResult{Outcome: "failed", Err: fmt.Errorf("labels and taints of node %s: %w", name, err)}
			}
			if converge {
				if err := refreshRuntime(ctx, c, n, h, d); err != nil {
					return HostResult{Outcome: "failed", Err: err}
				}
			}
			return HostResult{Outcome: "already joined (node " + name + " Ready)"}
		}
		from, bundle := "", ""
		if srv != nil {
			if err := checkBundleArch(ctx, h, c.Artifacts.Bundle); err != nil {
				return HostResult{Outcome: "failed", Err: err}
			}
			if why := fetch.onto(ctx, h); why != "" {
				o.Out.Infof("  ! %s: %s: sending kforge and the bundle from this machine", n.Address, why)
			} else {
				from = srv.url
			}
		}
		if from == "" {
			if bundle, err = remoteKforge(ctx, h, self, c.Artifacts.Bundle); err != nil {
				return HostResult{Outcome: "failed", Err: err}
			}
		}
		if err := phases.CopyRegistryAuth(ctx, d.Host, h); err != nil {
			return HostResult{Outcome: "failed", Err: fmt.Errorf("registry credentials: %w", err)}
		}
		// The worker's kforge writes as this one does (text or JSON) and
		// its lines are relayed with the worker's name.
		argv := append([]string{layout.KforgeBinary, "join", "--plain", "--output", o.Out.Format(), "--" + StopOnStdinEOFFlag}, args...)
		argv = append(argv, "--node-name", name)
		if n.NodeIP != "" {
			argv = append(argv, "--node-ip", n.NodeIP)
		}
		if bundle != "" {
			argv = append(argv, "--bundle", bundle)
		}
		if from != "" {
			argv = append(argv, "--"+ArtifactsFromFlag, from)
		}
		// Public keys: no secret on the command line.
		for _, k := range c.Artifacts.TrustedKeys {
			argv = append(argv, "--trusted-key", k)
		}
		if d.AllowUnsignedBundle {
			argv = append(argv, "--unsafe-allow-unsigned-bundle")
		}
		if err := runPrefixed(ctx, h, o.Out, argv, token+"\n"); err != nil {
			return HostResult{Outcome: "failed", Err: err}
		}
		if err := phases.ApplyNodeMetadata(ctx, admin.Kube, name, n); err != nil {
			return HostResult{Outcome: "failed", Err: fmt.Errorf("labels and taints of node %s: %w", name, err)}
		}
		return HostResult{Outcome: "joined as " + name}
	}
	if o.Out.Terminal() && srv == nil {
		// Uploads of kforge and the bundle over 1 MiB show a bar.
		o.Connect.Progress = o.Out.Writer()
	}
	if parallel < 1 {
		parallel = DefaultParallel
	}
	o.Out.Infof("\nJoining %d worker(s), %d at a time", len(workers), max(1, min(parallel, len(workers))))
	var names []string
	for _, n := range workers {
		names = append(names, n.Address)
	}
	// On a terminal, a line per worker redrawn in place.
	doneBoard := o.Out.Board(names)
	results := forEachHost(ctx, workers, parallel, func(ctx context.Context, n config.Host) HostResult {
		r := joinWorker(ctx, n)
		o.Out.FinishOn(n.Address, r.Err != nil)
		return r
	})
	doneBoard()
	return summarize(o.Out, "Workers", results)
}

// refreshRuntime runs the runtime phase on a worker that has joined, from
// this machine over the worker's connection, so that a changed cluster
// file (registries, their credentials) reaches it; containerd restarts
// only when its config changed.
func refreshRuntime(ctx context.Context, c *config.Cluster, n config.Host, h host.Host, cp *phases.Data) error {
	d, err := phases.New(ctx, phases.Config{Command: "join", Cluster: c, Node: n, Host: h, Out: reporter.Discard(), KforgeBinary: cp.KforgeBinary})
	if err != nil {
		return err
	}
	return phases.RefreshRuntime(ctx, d)
}

// nodeReady tells whether the named Node exists and is Ready.
func nodeReady(ctx context.Context, c *kube.Client, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	ready, _ := kube.NodeReady(n)
	return ready
}
