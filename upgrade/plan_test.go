package upgrade

import (
	"strings"
	"testing"

	"kforge.dev/kforge/images"
)

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		from, to, want string
	}{
		{"v1.36.3", "v1.37.2", ""},
		{"v1.37.1", "v1.37.2", ""},
		{"v1.37.2", "v1.37.2", ""},
		{"v1.35.4", "v1.37.2", "skips a minor version: the cluster runs v1.35.4, and the API server moves one minor at a time; upgrade to v1.36 first"},
		{"v1.37.2", "v1.36.3", "older than the cluster's v1.37.2: kforge does not downgrade"},
		{"v1.37.2", "v1.37.1", "does not downgrade"},
		{"v1.37.2", "v2.0.0", "another major version"},
		{"1.37", "v1.37.2", "is not a Kubernetes version"},
	} {
		err := CheckPath(tc.from, tc.to)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s → %s: %v", tc.from, tc.to, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s → %s: got %v, want an error with %q", tc.from, tc.to, err, tc.want)
		}
	}
}

func TestCheckSkew(t *testing.T) {
	for _, tc := range []struct {
		api, kubelet, want string
	}{
		{"v1.37.2", "v1.37.2", ""},
		{"v1.37.2", "v1.37.0", ""},
		{"v1.37.0", "v1.37.2", ""}, // patch releases of one minor mix
		{"v1.37.2", "v1.34.1", ""}, // three minors behind
		{"v1.37.2", "v1.33.9", "more than 3 minors older"},
		{"v1.36.3", "v1.37.2", "newer than the API server's v1.36.3: control planes are upgraded first"},
	} {
		err := CheckSkew(tc.api, tc.kubelet)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("API %s, kubelet %s: %v", tc.api, tc.kubelet, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("API %s, kubelet %s: got %v, want an error with %q", tc.api, tc.kubelet, err, tc.want)
		}
	}
}

// at is a node running every image of version v.
func at(t *testing.T, name, role, v string) Node {
	t.Helper()
	s, err := images.For(v)
	if err != nil {
		t.Fatal(err)
	}
	n := Node{Name: name, Role: role, Ready: true, Kubelet: v}
	if role == ControlPlane {
		n.Components = map[string]string{}
		for _, c := range ControlPlaneComponents {
			n.Components[c] = TargetImage(s, c)
		}
	}
	return n
}

func addOnsAt(t *testing.T, v string) map[string]string {
	t.Helper()
	s, err := images.For(v)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range AddOns {
		out[a] = TargetImage(s, a)
	}
	return out
}

func healthy(t *testing.T, v string, nodes ...Node) Cluster {
	return Cluster{Nodes: nodes, AddOns: addOnsAt(t, v), EtcdMembers: 1, EtcdHealthy: 1}
}

func TestMakeOrdersControlPlanesThenWorkersThenAddOns(t *testing.T) {
	c := healthy(t, "v1.36.3",
		at(t, "w1", Worker, "v1.36.3"),
		at(t, "cp1", ControlPlane, "v1.36.3"),
		at(t, "w2", Worker, "v1.36.3"))
	p := Make(c, "v1.37.2")
	if len(p.Refusals) > 0 || p.Done || p.From != "v1.36.3" || p.To != "v1.37.2" {
		t.Fatalf("plan %+v", p)
	}
	want := []string{"etcd snapshot", "control-plane cp1: kubelet v1.36.3 → v1.37.2; etcd 3.6.8-0 → 3.7.0-0, kube-apiserver v1.36.3 → v1.37.2",
		"worker w1: cordon, drain", "worker w2: cordon, drain", "add-ons: kube-proxy v1.36.3 → v1.37.2, coredns v1.14.2 → v1.14.6"}
	if len(p.Steps) != len(want) {
		t.Fatalf("steps %q", p.Steps)
	}
	for i, w := range want {
		if !strings.HasPrefix(p.Steps[i], w) {
			t.Errorf("step %d: %q, want it to start with %q", i, p.Steps[i], w)
		}
	}
}

func TestMakeResumesAHalfUpgradedCluster(t *testing.T) {
	c := healthy(t, "v1.36.3",
		at(t, "cp1", ControlPlane, "v1.37.2"),
		at(t, "w1", Worker, "v1.37.2"),
		at(t, "w2", Worker, "v1.36.3"))
	p := Make(c, "v1.37.2")
	if len(p.Refusals) > 0 || p.Done {
		t.Fatalf("plan %+v", p)
	}
	if !strings.Contains(p.Steps[1], "cp1: already at v1.37.2, skipped") || !strings.Contains(p.Steps[2], "w1: already at v1.37.2, skipped") || !strings.Contains(p.Steps[3], "w2: cordon") {
		t.Errorf("steps %q", p.Steps)
	}
	// A control plane whose kubelet moved but whose static pods did not
	// (an apply interrupted in the middle of the node) is not skipped.
	half := at(t, "cp1", ControlPlane, "v1.37.2")
	half.Components["kube-scheduler"] = "registry.k8s.io/kube-scheduler:v1.36.3"
	p = Make(healthy(t, "v1.36.3", half), "v1.37.2")
	if !strings.Contains(p.Steps[1], "kube-scheduler v1.36.3 → v1.37.2") {
		t.Errorf("half-upgraded control plane: steps %q", p.Steps)
	}
	// Everything at the target: nothing to do.
	p = Make(healthy(t, "v1.37.2", at(t, "cp1", ControlPlane, "v1.37.2"), at(t, "w1", Worker, "v1.37.2")), "v1.37.2")
	if !p.Done || len(p.Refusals) > 0 {
		t.Errorf("a cluster at the target: %+v", p)
	}
}

func TestMakeRefusals(t *testing.T) {
	notReady := at(t, "w1", Worker, "v1.36.3")
	notReady.Ready = false
	for _, tc := range []struct {
		name string
		c    Cluster
		to   string
		want string
	}{
		{"skip a minor", healthy(t, "v1.35.4", at(t, "cp1", ControlPlane, "v1.35.4")), "v1.37.2", "skips a minor version"},
		{"downgrade", healthy(t, "v1.37.2", at(t, "cp1", ControlPlane, "v1.37.2")), "v1.36.3", "does not downgrade"},
		{"unsupported target", healthy(t, "v1.37.2", at(t, "cp1", ControlPlane, "v1.37.2")), "v1.38.0", "unsupported Kubernetes version"},
		{"node NotReady", healthy(t, "v1.36.3", at(t, "cp1", ControlPlane, "v1.36.3"), notReady), "v1.37.2", "node w1 is NotReady"},
		{"kubelet too old for the target", healthy(t, "v1.36.3", at(t, "cp1", ControlPlane, "v1.36.3"), Node{Name: "w1", Role: Worker, Ready: true, Kubelet: "v1.33.1"}), "v1.37.2",
			"node w1: once the control planes run v1.37.2, a kubelet of v1.33.1 is more than 3 minors older"},
		{"etcd without quorum", Cluster{Nodes: []Node{at(t, "cp1", ControlPlane, "v1.36.3")}, EtcdMembers: 3, EtcdHealthy: 1}, "v1.37.2", "etcd: 1 of 3 members answer, short of the 2 a quorum needs"},
		{"certificate expiring", Cluster{Nodes: []Node{at(t, "cp1", ControlPlane, "v1.36.3")}, EtcdMembers: 1, EtcdHealthy: 1, Expiring: []string{"cp1: ca (in 20m)"}}, "v1.37.2", "certificate cp1: ca (in 20m) expires before the upgrade could finish"},
		{"no control plane", healthy(t, "v1.36.3", at(t, "w1", Worker, "v1.36.3")), "v1.37.2", "no control plane"},
	} {
		p := Make(tc.c, tc.to)
		if !strings.Contains(strings.Join(p.Refusals, "\n"), tc.want) {
			t.Errorf("%s: refusals %q, want one with %q", tc.name, p.Refusals, tc.want)
		}
	}
}
