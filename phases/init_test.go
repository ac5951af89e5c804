package phases

import (
	"context"
	"strings"
	"testing"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/facts"
	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/reporter"
	"kforge.dev/kforge/templates"
)

// fakeNode is a Data for a cgroup v1 host without systemd or
// CAP_SYS_RESOURCE, like kforge's CI machines, on a fake Host.
func fakeNode(t *testing.T, probe string) (*Data, *fake.Host) {
	t.Helper()
	f, err := facts.Parse(probe)
	if err != nil {
		t.Fatal(err)
	}
	h := fake.New("node1")
	return &Data{
		Cluster: config.Default(), Host: h, Facts: f, Out: reporter.Discard(),
		NodeName: "node1", AdvertiseAddress: "10.0.0.5", Endpoint: "10.0.0.5:6443",
		CNIBinDir: templates.DebianCNIBinDir, CACertDirs: []string{"/etc/ssl/certs"},
	}, h
}

const ciHost = "uid=0\nhostname=node1\ncgroupfs=tmpfs\npid1=sh\ncapeff=000001fffeffffff\nswaps=0\n"

func TestInitOnAFakeHost(t *testing.T) {
	d, h := fakeNode(t, ciHost)
	if err := Execute(context.Background(), Init(), d, Options{}); err != nil {
		t.Fatal(err)
	}
	files := h.Files()
	for _, p := range []string{
		"/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/admin.conf",
		"/etc/kubernetes/manifests/etcd.yaml", "/etc/kubernetes/manifests/kube-apiserver.yaml",
		"/etc/kubernetes/manifests/kube-controller-manager.yaml", "/etc/kubernetes/manifests/kube-scheduler.yaml",
	} {
		if _, ok := files[p]; !ok {
			t.Errorf("init wrote no %s", p)
		}
	}
	for _, p := range []string{"/etc/kubernetes/pki/ca.key", "/etc/kubernetes/admin.conf", "/etc/kubernetes/pki/sa.key"} {
		if m := files[p].Mode.Perm(); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, m)
		}
	}
	if c := string(files["/etc/containerd/config.toml"].Data); !strings.Contains(c, "restrict_oom_score_adj = true") {
		t.Errorf("containerd config lacks restrict_oom_score_adj on a host without CAP_SYS_RESOURCE:\n%s", c)
	}
	if k := string(files["/var/lib/kubelet/config.yaml"].Data); !strings.Contains(k, "failCgroupV1: false") || !strings.Contains(k, "cgroupDriver: cgroupfs") {
		t.Errorf("kubelet config on cgroup v1 without systemd:\n%s", k)
	}
}

func TestInitOnASystemdHost(t *testing.T) {
	d, h := fakeNode(t, "uid=0\nhostname=node1\ncgroupfs=cgroup2fs\npid1=systemd\nsystemd_dir=yes\ncapeff=000001ffffffffff\nswaps=0\n")
	if err := Execute(context.Background(), Init(), d, Options{Only: "runtime"}); err != nil {
		t.Fatal(err)
	}
	c := string(h.Files()["/etc/containerd/config.toml"].Data)
	if !strings.Contains(c, "SystemdCgroup = true") || strings.Contains(c, "restrict_oom_score_adj = true") {
		t.Errorf("containerd config on a systemd host with all capabilities:\n%s", c)
	}
}

func TestPreflightRefusesNonRoot(t *testing.T) {
	d, h := fakeNode(t, strings.Replace(ciHost, "uid=0", "uid=1000", 1))
	err := Execute(context.Background(), Init(), d, Options{})
	if err == nil || !strings.Contains(err.Error(), "preflight") || !strings.Contains(err.Error(), "root") {
		t.Fatalf("want a preflight error about root, got %v", err)
	}
	if len(h.Paths()) != 0 {
		t.Errorf("a failed preflight wrote %v", h.Paths())
	}
}
