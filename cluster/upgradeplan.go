package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/expiration"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/providers/ssh"
	"kforge.dev/kforge/reporter"
	"kforge.dev/kforge/upgrade"
)

// UpgradeWindow is how long an upgrade may take: a certificate that
// expires sooner makes plan and apply refuse.
const UpgradeWindow = 2 * time.Hour

// UpgradeOptions are the inputs of `kforge upgrade plan|apply|rollback`.
type UpgradeOptions struct {
	Connect    ConnectOptions
	ConfigFile string
	// Bundle holds the target version (plan, apply).
	Bundle string
	Trust  Trust
	// KubernetesVersion, when set, is the version the bundle must hold.
	KubernetesVersion string
	// Parallel is how many workers are upgraded at once.
	Parallel int
	// Timeout bounds each node's health gate.
	Timeout time.Duration
	// SnapshotDir is where apply keeps the etcd snapshot it takes first.
	SnapshotDir string
	// Node limits rollback to one node.
	Node string
	// Schedulable: the cluster is kforge up's single node, which runs
	// workloads (its control plane keeps no NoSchedule taint).
	Schedulable bool
	// EtcdSnapshot, for rollback, restores etcd from this snapshot too.
	EtcdSnapshot string
	JSON         bool
	Out          *reporter.Reporter
}

// upgradeRun is what plan learned, which apply carries out.
type upgradeRun struct {
	c        *config.Cluster
	manifest bundle.Manifest
	state    upgrade.Cluster
	plan     upgrade.Plan
	// hosts maps node names to the cluster file's entries.
	hosts map[string]config.Host
	admin *kube.Client
	pool  *ssh.Pool
}

func (r *upgradeRun) close() { r.pool.Close() }

// UpgradePlan prints each node's versions, the bundle's, and the steps of
// an apply; it fails, saying why, when apply would refuse.
func UpgradePlan(ctx context.Context, o UpgradeOptions) error {
	r, err := planUpgrade(ctx, o)
	if err != nil {
		return err
	}
	defer r.close()
	if o.JSON {
		if err := writeJSON(o.Out.Writer(), map[string]any{"cluster": r.state, "plan": r.plan}); err != nil {
			return err
		}
	} else {
		printUpgradePlan(o.Out.Writer(), r)
	}
	return refused(r.plan)
}

func refused(p upgrade.Plan) error {
	if len(p.Refusals) == 0 {
		return nil
	}
	return fmt.Errorf("the upgrade to %s is refused, and nothing was changed:\n  %s", p.To, strings.Join(p.Refusals, "\n  "))
}

// planUpgrade loads the cluster file and the bundle, reads the cluster's
// state from a control plane and makes the plan.
func planUpgrade(ctx context.Context, o UpgradeOptions) (*upgradeRun, error) {
	if o.Bundle == "" {
		return nil, fmt.Errorf("--bundle: name the bundle of the version to upgrade to (make artifacts KUBERNETES_VERSIONS=vX.Y.Z builds one)")
	}
	c, err := LoadConfig(o.ConfigFile, Overrides{})
	if err != nil {
		return nil, err
	}
	if err := o.Trust.Apply(c); err != nil {
		return nil, err
	}
	file := config.ExpandHome(o.Bundle)
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("--bundle: %w", err)
	}
	c.Artifacts.Bundle = file
	m, err := bundle.Inspect(file)
	if err != nil {
		return nil, fmt.Errorf("--bundle %s: %w", file, err)
	}
	keys, err := bundle.ParseTrustedKeys(c.Artifacts.TrustedKeys)
	if err != nil {
		return nil, err
	}
	if _, err := bundle.VerifySignature(file, keys); err != nil && !o.Trust.AllowUnsigned {
		return nil, fmt.Errorf("--bundle %s: %w", file, err)
	}
	r := &upgradeRun{c: c, manifest: m, pool: ssh.NewPool(), hosts: map[string]config.Host{}}
	o.Connect.Pool = r.pool
	if err := r.gather(ctx, o); err != nil {
		r.close()
		return nil, err
	}
	r.plan = upgrade.Make(r.state, m.KubernetesVersion)
	if o.KubernetesVersion != "" && strings.TrimPrefix(o.KubernetesVersion, "v") != strings.TrimPrefix(m.KubernetesVersion, "v") {
		r.plan.Refusals = append(r.plan.Refusals, fmt.Sprintf("the bundle %s holds Kubernetes %s, not %s: pass the bundle of %s (make artifacts KUBERNETES_VERSIONS=%s builds it)",
			file, m.KubernetesVersion, o.KubernetesVersion, o.KubernetesVersion, o.KubernetesVersion))
	}
	for _, n := range r.state.Nodes {
		if _, ok := r.hosts[n.Name]; !ok {
			r.plan.Refusals = append(r.plan.Refusals, fmt.Sprintf("node %s is not in %s: add it (name or address) so that kforge can reach it", n.Name, o.ConfigFile))
		}
	}
	return r, nil
}

// gather reads the nodes, the static pods, the add-ons, etcd's members and
// the control planes' certificates.
func (r *upgradeRun) gather(ctx context.Context, o UpgradeOptions) error {
	nodes, err := r.connectCluster(ctx, o)
	if err != nil {
		return err
	}
	pods, err := r.admin.Kube.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "tier=control-plane"})
	if err != nil {
		return fmt.Errorf("list the control plane's pods on %s: %w", r.admin.Server(), err)
	}
	for _, n := range nodes.Items {
		un := upgrade.Node{Name: n.Name, Role: upgrade.Worker, Kubelet: n.Status.NodeInfo.KubeletVersion}
		un.Ready, _ = kube.NodeReady(&n)
		if _, ok := n.Labels["node-role.kubernetes.io/control-plane"]; ok {
			un.Role = upgrade.ControlPlane
			un.Components = map[string]string{}
			for _, p := range pods.Items {
				if p.Spec.NodeName == n.Name && len(p.Spec.Containers) > 0 {
					un.Components[p.Labels["component"]] = p.Spec.Containers[0].Image
				}
			}
		}
		r.state.Nodes = append(r.state.Nodes, un)
		if hc, ok := hostOfNode(r.c, n); ok {
			r.hosts[n.Name] = hc
		}
	}
	r.state.AddOns = addOnImages(ctx, r.admin)
	if err := r.gatherEtcd(ctx, o); err != nil {
		return err
	}
	for _, n := range r.c.ControlPlanes() {
		ch, err := Connect(ctx, n, o.Connect)
		if err != nil {
			return fmt.Errorf("control plane %s: %w", n.Address, err)
		}
		list, err := expiration.Check(ctx, ch, time.Now())
		ch.Close()
		if err != nil {
			return fmt.Errorf("certificates of %s: %w", n.Address, err)
		}
		for _, cert := range expiration.Expiring(list, UpgradeWindow) {
			r.state.Expiring = append(r.state.Expiring, fmt.Sprintf("%s: %s (%s)", ch.Name(), cert.Name, expiration.HumanDuration(cert.Residual)))
		}
	}
	return nil
}

// connectCluster sets r.admin, a client of the cluster's API server as
// admin.conf of the first control plane that answers, and lists the
// Nodes.
func (r *upgradeRun) connectCluster(ctx context.Context, o UpgradeOptions) (*corev1.NodeList, error) {
	h, closeCP, err := controlPlaneHost(ctx, o.ConfigFile, &o.Connect)
	if err != nil {
		return nil, err
	}
	defer closeCP()
	if r.admin, err = kube.FromHost(ctx, h, layout.AdminConf, ""); err != nil {
		return nil, err
	}
	nodes, err := r.admin.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes on %s: %w", r.admin.Server(), err)
	}
	return nodes, nil
}

func (r *upgradeRun) gatherEtcd(ctx context.Context, o UpgradeOptions) error {
	members, err := listEtcdMembers(ctx, o.Connect, o.ConfigFile)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.Learner {
			continue
		}
		r.state.EtcdMembers++
		if m.Healthy {
			r.state.EtcdHealthy++
		}
	}
	return nil
}

// hostOfNode finds the cluster file's entry of a Node: by name, else by
// one of its addresses.
func hostOfNode(c *config.Cluster, n corev1.Node) (config.Host, bool) {
	for _, h := range c.Hosts {
		if h.Name != "" && h.Name == n.Name {
			return h, true
		}
	}
	for _, h := range c.Hosts {
		for _, a := range n.Status.Addresses {
			if (h.Address != "" && h.Address == a.Address) || (h.NodeIP != "" && h.NodeIP == a.Address) {
				return h, true
			}
		}
	}
	if len(c.Hosts) == 1 && c.Hosts[0].Local {
		return c.Hosts[0], true
	}
	return config.Host{}, false
}

// addOnImages are the images the add-ons run, by upgrade.AddOns name.
func addOnImages(ctx context.Context, c *kube.Client) map[string]string {
	out := map[string]string{}
	apps := c.Kube.AppsV1()
	pick := func(name string, containers []corev1.Container) {
		for _, ct := range containers {
			if ct.Name == name {
				out[name] = ct.Image
				return
			}
		}
		if len(containers) > 0 {
			out[name] = containers[0].Image
		}
	}
	for _, name := range []string{"kube-proxy", "kube-router"} {
		if ds, err := apps.DaemonSets(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{}); err == nil {
			pick(name, ds.Spec.Template.Spec.Containers)
		}
	}
	if d, err := apps.Deployments(metav1.NamespaceSystem).Get(ctx, "coredns", metav1.GetOptions{}); err == nil {
		pick("coredns", d.Spec.Template.Spec.Containers)
	}
	return out
}

func printUpgradePlan(out io.Writer, r *upgradeRun) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLE\tREADY\tKUBELET\tETCD\tAPI SERVER\tCONTROLLER MANAGER\tSCHEDULER")
	for _, n := range r.state.Nodes {
		cols := []string{n.Name, n.Role, fmt.Sprint(n.Ready), n.Kubelet}
		for _, c := range upgrade.ControlPlaneComponents {
			v := "-"
			if img, ok := n.Components[c]; ok {
				v = imageTag(img)
			}
			cols = append(cols, v)
		}
		fmt.Fprintln(w, strings.Join(cols, "\t"))
	}
	w.Flush()
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ADD-ON\tCURRENT\tTARGET")
	for _, a := range upgrade.AddOns {
		if img, ok := r.state.AddOns[a]; ok {
			fmt.Fprintf(w, "%s\t%s\t%s\n", a, imageTag(img), imageTag(upgrade.TargetImage(r.plan.Target, a)))
		}
	}
	w.Flush()
	fmt.Fprintf(out, "\netcd: %d of %d voting members healthy\n", r.state.EtcdHealthy, r.state.EtcdMembers)
	fmt.Fprintf(out, "Upgrade %s → %s from bundle %s (etcd %s, CoreDNS %s):\n", r.plan.From, r.plan.To, r.c.Artifacts.Bundle, r.manifest.Versions.Etcd, r.manifest.Versions.CoreDNS)
	for i, s := range r.plan.Steps {
		fmt.Fprintf(out, "  %d. %s\n", i+1, s)
	}
	if r.plan.Done {
		fmt.Fprintf(out, "Every node and add-on runs %s already: nothing to do.\n", r.plan.To)
	}
}

func imageTag(image string) string {
	if i := strings.LastIndex(image, ":"); i >= 0 && !strings.Contains(image[i:], "/") {
		return image[i+1:]
	}
	return image
}

// hostName is how upgrade messages name a node's host.
func hostName(h host.Host, node string) string {
	if h.Name() == node {
		return node
	}
	return node + " (" + h.Name() + ")"
}
