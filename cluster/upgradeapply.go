package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/etcdcluster"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/renewal"
	"kforge.dev/kforge/upgrade"
)

// DefaultUpgradeTimeout bounds each node's health gate.
const DefaultUpgradeTimeout = 5 * time.Minute

// GateSettle is how long a control plane must stay healthy after its
// kubelet restarted before the next node starts.
const GateSettle = 20 * time.Second

// RollbackTimeout is the least a rolled-back node is given to be healthy
// again: its static pods and the kubelet restart once more.
const RollbackTimeout = 3 * time.Minute

// UpgradeApply upgrades the cluster to the bundle's version: an etcd
// snapshot first, copied to this machine; then the control planes one at
// a time, each healthy before the next; then the workers, Parallel at a
// time, each drained first and uncordoned once Ready; then the add-ons.
// A node that fails its health gate is rolled back to what it ran before
// and the apply stops. A re-run skips the nodes at the target and
// finishes a half-upgraded one.
func UpgradeApply(ctx context.Context, o UpgradeOptions) error {
	start := time.Now()
	r, err := planUpgrade(ctx, o)
	if err != nil {
		return err
	}
	defer r.close()
	o.Connect.Pool = r.pool
	if err := refused(r.plan); err != nil {
		return err
	}
	if r.plan.Done {
		o.Out.Infof("every node and add-on runs %s already: nothing to do", r.plan.To)
		return nil
	}
	o.Out.Infof("Upgrading %s → %s", r.plan.From, r.plan.To)
	snap, err := r.snapshot(ctx, o)
	if err != nil {
		return err
	}
	o.Out.Infof("etcd snapshot before the upgrade: %s (kforge etcd snapshot restore %s -f %s brings it back, losing every later write)", snap, snap, o.ConfigFile)

	to := r.plan.Target
	r.c.KubernetesVersion = to.Versions.Kubernetes
	first, err := firstControlPlane(ctx, r.c, o.Connect)
	if err != nil {
		return err
	}
	firstHost, err := Connect(ctx, first, o.Connect)
	if err != nil {
		return err
	}
	defer firstHost.Close()
	var times []string
	cps := append([]config.Host{first}, without(r.c.ControlPlanes(), first)...)
	for i, n := range cps {
		node, ok := r.node(n)
		if !ok {
			return fmt.Errorf("control plane %s is not a node of the cluster: join it first (kforge init -f %s)", n.Address, o.ConfigFile)
		}
		if upgrade.AtTarget(node, to) {
			o.Out.Infof("control plane %s: at %s already, skipped", node.Name, to.Versions.Kubernetes)
			continue
		}
		t := time.Now()
		done := o.Out.Step("upgrade control plane " + node.Name)
		err := r.upgradeControlPlane(ctx, o, n, node, i == 0, firstHost)
		done(err)
		if err != nil {
			return err
		}
		times = append(times, fmt.Sprintf("%s %.1fs", node.Name, time.Since(t).Seconds()))
	}

	workers := r.c.Workers()
	if len(workers) > 0 {
		o.Out.Infof("Upgrading %d worker(s), %d at a time", len(workers), max(1, min(o.Parallel, len(workers))))
	}
	results := forEachHost(ctx, workers, o.Parallel, func(ctx context.Context, n config.Host) HostResult {
		node, ok := r.node(n)
		if !ok {
			return HostResult{Outcome: "failed", Err: fmt.Errorf("not a node of the cluster: join it first (kforge init -f %s)", o.ConfigFile)}
		}
		if upgrade.AtTarget(node, to) {
			return HostResult{Outcome: "at " + to.Versions.Kubernetes + " already, skipped"}
		}
		if err := r.upgradeWorker(ctx, o, n, node); err != nil {
			return HostResult{Outcome: "failed", Err: err}
		}
		return HostResult{Outcome: "upgraded " + node.Name + " to " + to.Versions.Kubernetes}
	})
	for i, res := range results {
		if res.Err == nil && strings.HasPrefix(res.Outcome, "upgraded") {
			times = append(times, fmt.Sprintf("%s %.1fs", workers[i].Address, res.Duration.Seconds()))
		}
	}
	if err := summarize(o.Out, "Workers", results); err != nil {
		return err
	}

	done := o.Out.Step("upgrade the add-ons (kube-proxy, CoreDNS, the network)")
	err = r.upgradeAddOns(ctx, o, first, firstHost, to)
	done(err)
	if err != nil {
		return err
	}
	if len(times) > 0 {
		o.Out.Infof("time per node: %s", strings.Join(times, ", "))
	}
	if file := o.ConfigFile; file != "" {
		o.Out.Infof("Set kubernetesVersion: %s in %s: kforge init -f and join take the cluster's version from it", to.Versions.Kubernetes, file)
	}
	o.Out.Total(fmt.Sprintf("kforge upgrade apply to %s finished in %s", to.Versions.Kubernetes, time.Since(start).Round(100*time.Millisecond)))
	return nil
}

func without(hosts []config.Host, h config.Host) []config.Host {
	var out []config.Host
	for _, x := range hosts {
		if x.Address != h.Address || x.Name != h.Name || x.Local != h.Local {
			out = append(out, x)
		}
	}
	return out
}

// node is the plan's node of a cluster file entry.
func (r *upgradeRun) node(h config.Host) (upgrade.Node, bool) {
	for _, n := range r.state.Nodes {
		if x, ok := r.hosts[n.Name]; ok && x.Address == h.Address && x.Name == h.Name && x.Local == h.Local {
			return n, true
		}
	}
	return upgrade.Node{}, false
}

// snapshot takes etcd's snapshot to SnapshotDir on this machine.
func (r *upgradeRun) snapshot(ctx context.Context, o UpgradeOptions) (string, error) {
	dir := o.SnapshotDir
	if dir == "" {
		dir = "."
	}
	dir = config.ExpandHome(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("--snapshot-dir: %w", err)
	}
	name := r.c.Name
	if name == "" {
		name = "cluster"
	}
	file := filepath.Join(dir, fmt.Sprintf("kforge-etcd-%s-%s-before-%s-%s.db", name, r.plan.From, r.plan.To, time.Now().UTC().Format("20060102T150405Z")))
	if err := EtcdSnapshotSave(ctx, EtcdSnapshotOptions{Connect: o.Connect, ConfigFile: o.ConfigFile, File: file, Out: o.Out}); err != nil {
		return "", fmt.Errorf("the etcd snapshot before the upgrade: %w; nothing was changed", err)
	}
	return file, nil
}

func (r *upgradeRun) nodeData(ctx context.Context, o UpgradeOptions, command string, n config.Host, h host.Host, src host.Host) (*phases.Data, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if o.Schedulable && command == "init" {
		command = "up"
	}
	return phases.New(ctx, phases.Config{
		Command: command, Cluster: r.c, Node: n, Host: h, Out: o.Out, Schedulable: o.Schedulable,
		KforgeBinary: self, StagingDir: stagingDir(), AllowUnsignedBundle: o.Trust.AllowUnsigned,
		ControlPlaneSource: src, WaitTimeout: o.Timeout,
		// Its version check refuses exactly this change of version.
		IgnorePreflight: []string{"KubernetesVersion"},
	})
}

// upgradeControlPlane moves one control plane: a backup of what it runs,
// its certificates renewed (as kubeadm does on upgrade), init's phases
// (a further control plane's join phases) at the target version, then
// the health gate. A failure rolls the node back.
func (r *upgradeRun) upgradeControlPlane(ctx context.Context, o UpgradeOptions, n config.Host, node upgrade.Node, first bool, src host.Host) error {
	h, err := Connect(ctx, n, o.Connect)
	if err != nil {
		return fmt.Errorf("control plane %s: %w", n.Address, err)
	}
	defer h.Close()
	to := r.plan.Target
	if err := phases.BackupNode(ctx, h, r.plan.From, to.Versions.Kubernetes, time.Now()); err != nil {
		return err
	}
	var cpSource host.Host
	list := phases.JoinControlPlane()
	var skip []string
	if first {
		list = phases.Init()
		// The add-ons move once every node has.
		skip = []string{"addons"}
	} else {
		cpSource = src
	}
	d, err := r.nodeData(ctx, o, "init", n, h, cpSource)
	if err != nil {
		return err
	}
	// The static pods move first, under the kubelet that runs (a kubelet
	// started while the API server is down waits minutes for its Node
	// before it runs any pod); the kubelet restarts on its new binary once
	// they are healthy, as kubeadm's upgrade has it.
	want := controlPlaneImages(to)
	err = r.renewForUpgrade(ctx, h)
	if err == nil {
		err = phases.Execute(ctx, list, d, phases.Options{Skip: append(skip, "kubelet")})
	}
	if err == nil {
		err = r.gate(ctx, h, d, node.Name, "", want, o.Timeout)
	}
	if err == nil {
		err = phases.Execute(ctx, list, d, phases.Options{Only: "kubelet"})
	}
	if err == nil {
		err = r.gate(ctx, h, d, node.Name, to.Versions.Kubernetes, want, o.Timeout)
	}
	if err == nil {
		if err := r.keepNewEtcd(ctx, h, node.Name); err != nil {
			return err
		}
		return markDone(ctx, h)
	}
	if ctx.Err() != nil {
		return err
	}
	return r.rollBackNode(ctx, o, h, d, node, err, false)
}

// renewForUpgrade re-issues the control plane's certificates and
// kubeconfigs before its static pods restart on the new version, so that
// they start with a full validity (kubeadm renews on upgrade too).
func (r *upgradeRun) renewForUpgrade(ctx context.Context, h host.Host) error {
	names, err := renewal.Expand([]string{"all"})
	if err != nil {
		return err
	}
	_, validity, err := r.c.Certs.Durations()
	if err != nil {
		return err
	}
	_, err = renewal.Renew(ctx, h, renewal.Options{Names: names, Validity: validity, Now: time.Now(), APIServerExtraSANs: r.c.Certs.ExtraSANs})
	return err
}

// controlPlaneImages are a version's static pod images by component.
func controlPlaneImages(s images.Set) map[string]string {
	out := map[string]string{}
	for _, c := range upgrade.ControlPlaneComponents {
		out[c] = upgrade.TargetImage(s, c)
	}
	return out
}

// upgradeWorker drains a worker, moves it and uncordons it once Ready at
// the target. A failure rolls it back and leaves it cordoned.
func (r *upgradeRun) upgradeWorker(ctx context.Context, o UpgradeOptions, n config.Host, node upgrade.Node) error {
	h, err := Connect(ctx, n, o.Connect)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer h.Close()
	to := r.plan.Target.Versions.Kubernetes
	if err := drainForUpgrade(ctx, r.admin, node.Name, o.Timeout, o.Out); err != nil {
		return err
	}
	if err := phases.BackupNode(ctx, h, r.plan.From, to, time.Now()); err != nil {
		return err
	}
	d, err := r.nodeData(ctx, o, "join", n, h, nil)
	if err != nil {
		return err
	}
	err = phases.Execute(ctx, phases.UpgradeWorker(), d, phases.Options{})
	if err == nil {
		err = r.gate(ctx, h, d, node.Name, to, nil, o.Timeout)
	}
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return r.rollBackNode(ctx, o, h, d, node, err, true)
	}
	if err := uncordon(ctx, r.admin, node.Name); err != nil {
		return err
	}
	return markDone(ctx, h)
}

func markDone(ctx context.Context, h host.Host) error {
	rec, err := phases.ReadUpgradeRecord(ctx, h)
	if err != nil || rec == nil {
		return err
	}
	rec.Done = true
	return phases.WriteUpgradeRecord(ctx, h, *rec)
}

// rollBackNode restores what the node ran before and waits for it to be
// healthy at its old version, then returns cause with what was done.
func (r *upgradeRun) rollBackNode(ctx context.Context, o UpgradeOptions, h host.Host, d *phases.Data, node upgrade.Node, cause error, worker bool) error {
	ctx = context.WithoutCancel(ctx)
	o.Out.Infof("  ! %s: %v\n  rolling %s back to %s", node.Name, cause, node.Name, r.plan.From)
	if err := r.keepNewEtcd(ctx, h, node.Name); err != nil {
		return fmt.Errorf("%w\nthe rollback failed too: %v", cause, err)
	}
	_, kubeletChanged, err := phases.RestoreNode(ctx, d)
	if err != nil {
		return fmt.Errorf("%w\nthe rollback failed too: %v", cause, err)
	}
	var want map[string]string
	if !worker {
		old, err := images.For(r.plan.From)
		if err != nil {
			return fmt.Errorf("%w\nthe rollback failed too: %v", cause, err)
		}
		want = controlPlaneImages(old)
		for c, img := range node.Components {
			want[c] = img
		}
		if rec, _ := phases.ReadUpgradeRecord(ctx, h); rec != nil && rec.EtcdUpgraded {
			want["etcd"] = upgrade.TargetImage(r.plan.Target, "etcd")
		}
	}
	if err := r.healthyAgain(ctx, h, d, node.Name, node.Kubelet, want, kubeletChanged, max(o.Timeout, RollbackTimeout)); err != nil {
		return fmt.Errorf("%w\nrolled back to %s, but the node is not healthy again: %v", cause, r.plan.From, err)
	}
	if rec, _ := phases.ReadUpgradeRecord(ctx, h); rec != nil {
		// The backup stays for kforge upgrade rollback; the node is at its
		// old version again, so the next apply backs it up afresh.
		rec.Done = true
		rec.To = r.plan.From
		_ = phases.WriteUpgradeRecord(ctx, h, *rec)
	}
	msg := fmt.Sprintf("rolled back: %s runs %s again and is healthy", node.Name, node.Kubelet)
	if worker {
		msg += fmt.Sprintf("; it is left cordoned (kubectl uncordon %s once you have looked)", node.Name)
	}
	return fmt.Errorf("%w\n%s", cause, msg)
}

// keepNewEtcd records that the node's etcd answers at the target's
// version: its data may then be in the newer format, which the older
// etcd does not read, so a rollback keeps etcd's new manifest.
func (r *upgradeRun) keepNewEtcd(ctx context.Context, h host.Host, node string) error {
	want := strings.TrimPrefix(r.plan.Target.Versions.Etcd, "v")
	c, err := etcdcluster.Dial(ctx, h)
	if err != nil {
		return nil // no etcd answers: it did not run the target's version
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := c.Status(sctx, etcdcluster.LocalEndpoint)
	if err != nil || st.Version != want {
		return nil
	}
	rec, err := phases.ReadUpgradeRecord(ctx, h)
	if err != nil || rec == nil || rec.EtcdUpgraded {
		return err
	}
	rec.EtcdUpgraded = true
	return phases.WriteUpgradeRecord(ctx, h, *rec)
}

// healthyAgain waits for a restored node: a control plane's static pods
// first, under the kubelet that runs, then, when the restore put back
// another kubelet binary, that kubelet restarted and the node at its old
// version.
func (r *upgradeRun) healthyAgain(ctx context.Context, h host.Host, d *phases.Data, node, kubelet string, want map[string]string, kubeletChanged bool, timeout time.Duration) error {
	if !kubeletChanged {
		return r.gate(ctx, h, d, node, kubelet, want, timeout)
	}
	if len(want) > 0 {
		if err := r.gate(ctx, h, d, node, "", want, timeout); err != nil {
			return err
		}
	}
	if err := phases.RestartKubelet(ctx, d); err != nil {
		return err
	}
	return r.gate(ctx, h, d, node, kubelet, want, timeout)
}

// gate waits until the node reports kubelet (any, when "") and is Ready and, for a
// control plane, each component's mirror pod runs its image in want and
// is Ready; it names the first component that is not, with the tail of
// its log.
func (r *upgradeRun) gate(ctx context.Context, h host.Host, d *phases.Data, node, kubelet string, want map[string]string, timeout time.Duration) error {
	var last, component string
	// A control plane's last gate, after its kubelet restarted, wants
	// everything healthy for a while: a new kubelet may restart static
	// pods whose hash it computes anew, a few seconds after it starts.
	settle := time.Duration(0)
	if len(want) > 0 && kubelet != "" {
		settle = GateSettle
	}
	var since time.Time
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (ok bool, err error) {
		defer func() {
			switch {
			case !ok:
				since = time.Time{}
			case since.IsZero():
				since, ok = time.Now(), settle == 0
			default:
				ok = time.Since(since) >= settle
			}
			if !ok && !since.IsZero() {
				last, component = fmt.Sprintf("healthy for %s, waiting for %s", time.Since(since).Round(time.Second), settle), "kube-apiserver"
			}
		}()
		if err := r.admin.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error(); err != nil {
			last, component = "the API server is not ready: "+err.Error(), "kube-apiserver"
			return false, nil
		}
		n, err := r.admin.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			last, component = "the API server does not answer: "+err.Error(), "kube-apiserver"
			return false, nil
		}
		for _, c := range upgrade.ControlPlaneComponents {
			img, ok := want[c]
			if !ok {
				continue
			}
			pods, err := r.admin.Kube.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "component=" + c, FieldSelector: "spec.nodeName=" + node})
			if err != nil {
				last, component = err.Error(), c
				return false, nil
			}
			ok = false
			for _, p := range pods.Items {
				if len(p.Spec.Containers) > 0 && p.Spec.Containers[0].Image == img && podReady(&p) {
					ok = true
				}
			}
			if !ok {
				last, component = fmt.Sprintf("its pod does not run %s Ready", img), c
				return false, nil
			}
		}
		if v := n.Status.NodeInfo.KubeletVersion; kubelet != "" && v != kubelet {
			last, component = "the node reports kubelet "+v+", not "+kubelet, "kubelet"
			return false, nil
		}
		if ready, why := kube.NodeReady(n); !ready {
			last, component = "the node is not Ready: "+why, "kubelet"
			return false, nil
		}
		return true, nil
	})
	if err == nil {
		return nil
	}
	return fmt.Errorf("node %s: %s not healthy within %s (%s); the last lines of its log:\n%s", hostName(h, node), component, timeout, last, componentLog(ctx, h, d, component))
}

// componentLog is the tail of a component's newest container's log, or
// of the kubelet's.
func componentLog(ctx context.Context, h host.Host, d *phases.Data, component string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if component == "kubelet" {
		return d.Services.Log(ctx, "kubelet", 15)
	}
	id, err := host.Output(ctx, h, "crictl", "ps", "-a", "--name", "^"+component+"$", "--latest", "--quiet")
	if id = strings.TrimSpace(id); err != nil || id == "" {
		return fmt.Sprintf("(no %s container on %s)", component, h.Name())
	}
	res, _ := h.Run(ctx, host.Cmd{Sudo: true, Argv: []string{"crictl", "logs", "--tail", "15", id}})
	return strings.TrimSpace(string(res.Stdout) + string(res.Stderr))
}

// upgradeAddOns applies kube-proxy, CoreDNS and the network at the target
// version from the first control plane and waits for their rollouts.
func (r *upgradeRun) upgradeAddOns(ctx context.Context, o UpgradeOptions, first config.Host, h host.Host, to images.Set) error {
	d, err := r.nodeData(ctx, o, "init", first, h, nil)
	if err != nil {
		return err
	}
	if err := phases.Execute(ctx, phases.Init(), d, phases.Options{Only: "addons"}); err != nil {
		return err
	}
	return waitAddOns(ctx, r.admin, to, o.Timeout)
}

// waitAddOns waits until every add-on runs its image of s on all its
// pods, up to date and ready.
func waitAddOns(ctx context.Context, c *kube.Client, s images.Set, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		have := addOnImages(ctx, c)
		for _, a := range upgrade.AddOns {
			img, ok := have[a]
			if !ok {
				continue
			}
			if want := upgrade.TargetImage(s, a); img != want {
				last = fmt.Sprintf("%s runs %s, not %s", a, img, want)
				return false, nil
			}
		}
		apps := c.Kube.AppsV1()
		for _, name := range []string{"kube-proxy", "kube-router"} {
			ds, err := apps.DaemonSets(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				continue
			}
			st := ds.Status
			if ds.Generation != st.ObservedGeneration || st.UpdatedNumberScheduled != st.DesiredNumberScheduled || st.NumberAvailable != st.DesiredNumberScheduled {
				last = fmt.Sprintf("DaemonSet %s: %d of %d pods updated and available", name, min(st.UpdatedNumberScheduled, st.NumberAvailable), st.DesiredNumberScheduled)
				return false, nil
			}
		}
		if dep, err := apps.Deployments(metav1.NamespaceSystem).Get(ctx, "coredns", metav1.GetOptions{}); err == nil {
			st := dep.Status
			want := int32(1)
			if dep.Spec.Replicas != nil {
				want = *dep.Spec.Replicas
			}
			if dep.Generation != st.ObservedGeneration || st.UpdatedReplicas != want || st.AvailableReplicas < want || st.Replicas != want {
				last = fmt.Sprintf("Deployment coredns: %d of %d replicas updated, %d available", st.UpdatedReplicas, want, st.AvailableReplicas)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("the add-ons did not roll out within %s: %s", timeout, last)
	}
	return nil
}
