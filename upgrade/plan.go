// Package upgrade decides whether and how a cluster moves to another
// Kubernetes version: the version-skew rules, the refusals of
// `kforge upgrade plan` and the order of its steps. It reads a description
// of the cluster (Cluster) and changes nothing; package cluster gathers
// that description and carries the plan out.
package upgrade

import (
	"fmt"
	"sort"
	"strings"

	"kforge.dev/kforge/images"
)

// Version is a Kubernetes version, vMAJOR.MINOR.PATCH.
type Version struct{ Major, Minor, Patch int }

// Parse reads "v1.37.2" or "1.37.2" (a suffix after "-" or "+" is
// ignored, as in v1.37.2-dirty).
func Parse(s string) (Version, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(t, "-+"); i >= 0 {
		t = t[:i]
	}
	var v Version
	if n, err := fmt.Sscanf(t, "%d.%d.%d", &v.Major, &v.Minor, &v.Patch); err != nil || n != 3 {
		return Version{}, fmt.Errorf("%q is not a Kubernetes version (vMAJOR.MINOR.PATCH)", s)
	}
	return v, nil
}

func (v Version) String() string { return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less orders versions.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// MaxKubeletSkew is how many minors a kubelet may be older than the API
// server (Kubernetes' version skew policy since 1.28); it may never be
// newer.
const MaxKubeletSkew = 3

// CheckPath says why a cluster whose API servers run current cannot be
// upgraded to target: a downgrade, or a skip of a minor (kubeadm's rule:
// one minor at a time, as the API server's storage migrations need).
func CheckPath(current, target string) error {
	c, err := Parse(current)
	if err != nil {
		return err
	}
	t, err := Parse(target)
	if err != nil {
		return err
	}
	switch {
	case t.Less(c):
		return fmt.Errorf("%s is older than the cluster's %s: kforge does not downgrade (kforge upgrade rollback takes a cluster back to the version before its last upgrade)", t, c)
	case t.Major != c.Major:
		return fmt.Errorf("%s is another major version than the cluster's %s", t, c)
	case t.Minor > c.Minor+1:
		return fmt.Errorf("%s skips a minor version: the cluster runs %s, and the API server moves one minor at a time; upgrade to v%d.%d first", t, c, c.Major, c.Minor+1)
	}
	return nil
}

// CheckSkew says why a kubelet of version kubelet cannot work with API
// servers of version apiServer: newer than them, or more than
// MaxKubeletSkew minors older.
func CheckSkew(apiServer, kubelet string) error {
	a, err := Parse(apiServer)
	if err != nil {
		return err
	}
	k, err := Parse(kubelet)
	if err != nil {
		return err
	}
	switch {
	case a.Less(k) && (k.Major != a.Major || k.Minor != a.Minor):
		return fmt.Errorf("a kubelet of %s is newer than the API server's %s: control planes are upgraded first", k, a)
	case k.Major != a.Major || a.Minor-k.Minor > MaxKubeletSkew:
		return fmt.Errorf("a kubelet of %s is more than %d minors older than the API server's %s", k, MaxKubeletSkew, a)
	}
	return nil
}

// Role of a node in the plan.
const (
	ControlPlane = "control-plane"
	Worker       = "worker"
)

// Node is what the plan knows of one node.
type Node struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Ready bool   `json:"ready"`
	// Kubelet is the version the Node reports.
	Kubelet string `json:"kubelet"`
	// Components are a control plane's static pods' images by component
	// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler).
	Components map[string]string `json:"components,omitempty"`
}

// Cluster is the cluster as upgrade plan found it.
type Cluster struct {
	Nodes []Node `json:"nodes"`
	// AddOns are the add-ons' images by name (kube-proxy, coredns,
	// kube-router).
	AddOns map[string]string `json:"addOns"`
	// EtcdMembers and EtcdHealthy count the voting members and those that
	// answer.
	EtcdMembers int `json:"etcdMembers"`
	EtcdHealthy int `json:"etcdHealthy"`
	// Expiring lists the certificates that expire before the upgrade
	// could finish, as "host: name (when)".
	Expiring []string `json:"expiring,omitempty"`
}

// ControlPlaneComponents are the static pods an upgrade replaces on a
// control plane, in the order their health is checked.
var ControlPlaneComponents = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// AddOns are the add-ons an upgrade moves after every node.
var AddOns = []string{"kube-proxy", "coredns", "kube-router"}

// Plan is the outcome of upgrade plan.
type Plan struct {
	// From is the oldest API server's version; To the target's.
	From string `json:"from"`
	To   string `json:"to"`
	// Target are the images of To.
	Target images.Set `json:"-"`
	// Steps, in order; nodes already at To are listed as skipped.
	Steps []string `json:"steps"`
	// Refusals say why the upgrade must not start; empty when it may.
	Refusals []string `json:"refusals,omitempty"`
	// Done says every node and add-on already runs To.
	Done bool `json:"done"`
}

// TargetImage is the image of a component or add-on at the target.
func TargetImage(s images.Set, component string) string {
	switch component {
	case "etcd":
		return s.Etcd
	case "kube-apiserver":
		return s.APIServer
	case "kube-controller-manager":
		return s.ControllerManager
	case "kube-scheduler":
		return s.Scheduler
	case "kube-proxy":
		return s.Proxy
	case "coredns":
		return s.CoreDNS
	case "kube-router":
		return s.KubeRouter
	}
	return ""
}

// AtTarget tells whether the node runs the target's kubelet and, for a
// control plane, the target's static pods.
func AtTarget(n Node, target images.Set) bool {
	if n.Kubelet != target.Versions.Kubernetes {
		return false
	}
	if n.Role != ControlPlane {
		return true
	}
	for _, c := range ControlPlaneComponents {
		if n.Components[c] != TargetImage(target, c) {
			return false
		}
	}
	return true
}

// Make plans the upgrade of c to the Kubernetes version to, which
// kforge must support.
func Make(c Cluster, to string) Plan {
	p := Plan{To: to}
	refuse := func(format string, a ...any) { p.Refusals = append(p.Refusals, fmt.Sprintf(format, a...)) }
	target, err := images.For(to)
	if err != nil {
		refuse("%v", err)
		return p
	}
	p.Target = target
	p.To = target.Versions.Kubernetes

	// The cluster's version is its oldest API server's: a cluster an
	// interrupted apply left half-upgraded resumes toward the same target.
	var from Version
	var cps, workers []Node
	for _, n := range c.Nodes {
		if n.Role == ControlPlane {
			cps = append(cps, n)
			img := n.Components["kube-apiserver"]
			_, tag, _ := strings.Cut(img, ":")
			v, err := Parse(tag)
			if err != nil {
				refuse("control plane %s: its API server's image %q has no version tag", n.Name, img)
				continue
			}
			if p.From == "" || v.Less(from) {
				from, p.From = v, v.String()
			}
		} else {
			workers = append(workers, n)
		}
	}
	if len(cps) == 0 {
		refuse("no control plane found among the cluster's nodes")
		return p
	}
	if p.From != "" {
		if err := CheckPath(p.From, p.To); err != nil {
			refuse("%v", err)
		}
	}
	for _, n := range c.Nodes {
		if !n.Ready {
			refuse("node %s is NotReady: bring it back (or remove it) before upgrading", n.Name)
		}
		k, err := Parse(n.Kubelet)
		if err != nil {
			refuse("node %s: %v", n.Name, err)
			continue
		}
		// A kubelet may move several minors at once, within the skew.
		if t, _ := Parse(p.To); t.Less(k) {
			refuse("node %s runs kubelet %s, newer than %s: kforge does not downgrade", n.Name, k, t)
		} else if err := CheckSkew(p.To, n.Kubelet); err != nil {
			refuse("node %s: once the control planes run %s, %v", n.Name, p.To, err)
		}
	}
	if quorum := c.EtcdMembers/2 + 1; c.EtcdHealthy < quorum {
		refuse("etcd: %d of %d members answer, short of the %d a quorum needs", c.EtcdHealthy, c.EtcdMembers, quorum)
	}
	for _, e := range c.Expiring {
		refuse("certificate %s expires before the upgrade could finish: renew it first (kforge certs renew)", e)
	}

	p.Done = true
	step := func(n Node, what string) {
		if AtTarget(n, target) {
			p.Steps = append(p.Steps, fmt.Sprintf("%s %s: already at %s, skipped", n.Role, n.Name, p.To))
			return
		}
		p.Done = false
		p.Steps = append(p.Steps, fmt.Sprintf("%s %s: %s", n.Role, n.Name, what))
	}
	p.Steps = append(p.Steps, "etcd snapshot, copied to this machine")
	for _, n := range cps {
		step(n, fmt.Sprintf("kubelet %s → %s; %s; renew its certificates; health of each before the next node", n.Kubelet, p.To, componentChanges(n, target)))
	}
	for _, n := range workers {
		step(n, fmt.Sprintf("cordon, drain, kubelet %s → %s, Ready, uncordon", n.Kubelet, p.To))
	}
	var addOns []string
	for _, a := range AddOns {
		have, ok := c.AddOns[a]
		if !ok {
			continue
		}
		if want := TargetImage(target, a); have != want {
			addOns = append(addOns, fmt.Sprintf("%s %s → %s", a, tagOf(have), tagOf(want)))
		}
	}
	if len(addOns) > 0 {
		p.Done = false
		p.Steps = append(p.Steps, "add-ons: "+strings.Join(addOns, ", "))
	} else {
		p.Steps = append(p.Steps, "add-ons: already at "+p.To+", skipped")
	}
	sort.Strings(p.Refusals)
	return p
}

func componentChanges(n Node, target images.Set) string {
	var out []string
	for _, c := range ControlPlaneComponents {
		have, want := n.Components[c], TargetImage(target, c)
		if have != want {
			out = append(out, fmt.Sprintf("%s %s → %s", c, tagOf(have), tagOf(want)))
		}
	}
	if len(out) == 0 {
		return "static pods already at the target"
	}
	return strings.Join(out, ", ")
}

func tagOf(image string) string {
	if i := strings.LastIndex(image, ":"); i >= 0 && !strings.Contains(image[i:], "/") {
		return image[i+1:]
	}
	if image == "" {
		return "(none)"
	}
	return image
}
