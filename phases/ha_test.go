package phases

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/reporter"
)

func haCluster(t *testing.T, vip string) *config.Cluster {
	t.Helper()
	y := "apiVersion: kforge.dev/v1alpha1\nkind: Cluster\n"
	if vip != "" {
		y += "loadBalancer: {virtualIP: " + vip + "}\n"
	}
	y += "hosts:\n- {address: 10.0.0.1, name: cp1, role: control-plane}\n- {address: 10.0.0.2, name: cp2, role: control-plane}\n" +
		"- {address: 10.0.0.3, name: cp3, role: control-plane}\n- {address: 10.0.0.4, name: w1, role: worker}\n"
	c, err := config.Parse("kforge.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func haData(t *testing.T, c *config.Cluster, node int, addr string) (*Data, *fake.Host) {
	h := fake.New(c.Hosts[node].Name)
	return &Data{Config: Config{Cluster: c, Node: c.Hosts[node], Host: h, Out: reporter.Discard()},
		NodeName: c.Hosts[node].Name, AdvertiseAddress: addr}, h
}

// Every node of a cluster with several control planes gets a load
// balancer in front of all three; its kubelet, kube-proxy and network use
// it, and the API server certificate names 127.0.0.1 for it.
func TestAPIServerLBOnEveryNode(t *testing.T) {
	ctx := context.Background()
	c := haCluster(t, "")
	d, h := haData(t, c, 3, "10.0.0.4")
	must(t, apiServerLB(ctx, d))
	cfg := string(h.Files()[layout.APIServerLBConfig].Data)
	for _, want := range []string{"server cp1 10.0.0.1:6443", "server cp2 10.0.0.2:6443", "server cp3 10.0.0.3:6443"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("load balancer config lacks %q", want)
		}
	}
	if _, ok := h.Files()[layout.APIServerLBManifest]; !ok {
		t.Error("no load balancer manifest")
	}
	if got := d.NodeAPIServer(); got != "127.0.0.1:6444" {
		t.Errorf("NodeAPIServer = %s", got)
	}
	if got := strings.Join(d.lbSANs(), ","); got != "127.0.0.1,localhost" {
		t.Errorf("lbSANs = %s", got)
	}
	// A cluster file with one control plane takes it away again.
	one, err := config.Parse("kforge.yaml", []byte("apiVersion: kforge.dev/v1alpha1\nkind: Cluster\nhosts:\n- {address: 10.0.0.1, role: control-plane}\n- {address: 10.0.0.4, role: worker}\n"))
	must(t, err)
	d.Cluster = one
	must(t, apiServerLB(ctx, d))
	if _, ok := h.Files()[layout.APIServerLBManifest]; ok {
		t.Error("the load balancer stayed with one control plane")
	}
	d.Endpoint = "10.0.0.1:6443"
	if d.NodeAPIServer() != "10.0.0.1:6443" || d.lbSANs() != nil {
		t.Errorf("one control plane: NodeAPIServer %s, SANs %v", d.NodeAPIServer(), d.lbSANs())
	}
}

// keepalived on the second control plane: its peers are the other two,
// its interface is the one holding its address, and the file's order
// sets its first-election priority; reset takes the address off again.
func TestVirtualIPAndItsReset(t *testing.T) {
	ctx := context.Background()
	c := haCluster(t, "10.0.0.100")
	d, h := haData(t, c, 1, "10.0.0.2")
	h.On(fake.Answer{Stdout: "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 10.0.0.2/24 brd 10.0.0.255 scope global eth0\n"}, "ip", "-o", "-4", "addr", "show")
	must(t, virtualIP(ctx, d))
	cfg := string(h.Files()[layout.VIPConfig].Data)
	for _, want := range []string{"interface eth0", "unicast_src_ip 10.0.0.2", "    10.0.0.1\n    10.0.0.3\n", "priority 190", "10.0.0.100/32 dev eth0"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("keepalived config lacks %q:\n%s", want, cfg)
		}
	}
	h.On(fake.Answer{}, "sh")
	must(t, resetVIP(ctx, d))
	calls := strings.Join(h.Calls(), "\n")
	if !strings.Contains(calls, `ip addr del "$1" dev "$2"' sh 10.0.0.100/32 eth0`) {
		t.Errorf("reset did not take the address off eth0; calls:\n%s", calls)
	}
	// No interface holds the address: the error says what to set.
	d2, h2 := haData(t, c, 1, "10.0.0.2")
	h2.On(fake.Answer{Stdout: "2: eth0    inet 192.0.2.9/24 scope global eth0\n"}, "ip", "-o", "-4", "addr", "show")
	if err := virtualIP(ctx, d2); err == nil || !strings.Contains(err.Error(), "set loadBalancer.interface") {
		t.Errorf("no interface: %v", err)
	}
}

// A re-run of a control plane's join keeps the --initial-cluster its
// manifest started with.
func TestJoinedInitialCluster(t *testing.T) {
	ctx := context.Background()
	c := haCluster(t, "")
	d, h := haData(t, c, 1, "10.0.0.2")
	if ic, err := joinedInitialCluster(ctx, d); err != nil || ic != "" {
		t.Fatalf("no manifest: %q %v", ic, err)
	}
	d.Results.EtcdInitialCluster = "cp1=https://10.0.0.1:2380,cp2=https://10.0.0.2:2380"
	files, err := renderControlPlane(d)
	if err == nil {
		for _, f := range files {
			if strings.HasSuffix(f.Path, "/etcd.yaml") {
				must(t, h.WriteFile(ctx, f.Path, f.Data, f.Mode))
			}
		}
	} else {
		// The fake has no facts for images; write the flags as kforge does.
		must(t, h.WriteFile(ctx, etcdManifest, []byte("    - --initial-cluster="+d.Results.EtcdInitialCluster+"\n    - --initial-cluster-state=existing\n"), 0o600))
	}
	ic, err := joinedInitialCluster(ctx, d)
	if err != nil || ic != d.Results.EtcdInitialCluster {
		t.Errorf("joined manifest: %q %v", ic, err)
	}
	// The first control plane's manifest (a new cluster) is not a join.
	must(t, h.WriteFile(ctx, etcdManifest, []byte("    - --initial-cluster=cp1=https://10.0.0.1:2380\n"), 0o600))
	if ic, _ := joinedInitialCluster(ctx, d); ic != "" {
		t.Errorf("a new cluster's manifest read as a join: %q", ic)
	}
}

// Without a running control plane to join through, the joining phases
// say how they are meant to run.
func TestJoinControlPlaneNeedsASource(t *testing.T) {
	d, _ := haData(t, haCluster(t, ""), 1, "10.0.0.2")
	for name, run := range map[string]func(context.Context, *Data) error{"shared-secrets": sharedSecrets, "etcd-promote": etcdPromote} {
		if err := run(context.Background(), d); err == nil || !strings.Contains(err.Error(), "kforge init -f joins control planes") {
			t.Errorf("%s without a source: %v", name, err)
		}
	}
}

// The secrets come from the running control plane with their modes.
func TestSharedSecretsCopied(t *testing.T) {
	ctx := context.Background()
	d, h := haData(t, haCluster(t, ""), 1, "10.0.0.2")
	src := fake.New("cp1")
	for _, p := range layout.SharedControlPlaneFiles {
		must(t, src.WriteFile(ctx, p, []byte("secret of "+p), 0o600))
	}
	d.ControlPlaneSource = src
	must(t, sharedSecrets(ctx, d))
	for _, p := range layout.SharedControlPlaneFiles {
		f := h.Files()[p]
		want := fs.FileMode(layout.SecretMode)
		if strings.HasSuffix(p, ".crt") || strings.HasSuffix(p, ".pub") {
			want = layout.PublicMode
		}
		if string(f.Data) != "secret of "+p || f.Mode != want {
			t.Errorf("%s: %q mode %o, want mode %o", p, f.Data, f.Mode, want)
		}
	}
}

// The control-plane join takes init's shared phases by name; a renamed
// one would leave a hole.
func TestJoinControlPlanePhases(t *testing.T) {
	var names []string
	for _, p := range JoinControlPlane() {
		if p.Name == "" || (p.Run == nil && len(p.Children) == 0) {
			t.Fatalf("an empty phase in JoinControlPlane: %+v", p)
		}
		names = append(names, p.Name)
	}
	want := "preflight bundle runtime images kforge-image shared-secrets certs kubeconfig apiserver-lb vip etcd-join kubelet etcd-promote control-plane wait control-plane mark-control-plane control-plane-check certs-auto-renew node-ready"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("JoinControlPlane:\n got %s\nwant %s", got, want)
	}
}
