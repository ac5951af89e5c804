package phases

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/facts"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/reporter"
	"kforge.dev/kforge/services"
)

// fakeNode is a Data for a cgroup v1 host without systemd or
// CAP_SYS_RESOURCE, like kforge's CI machines, on a fake Host.
func fakeNode(t *testing.T, probe string) (*Data, *fake.Host) {
	t.Helper()
	f, err := facts.Parse(probe)
	if err != nil {
		t.Fatal(err)
	}
	h := fake.Installed("node1")
	self := filepath.Join(t.TempDir(), "kforge")
	if err := os.WriteFile(self, []byte("kforge"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := &Data{
		Config:   Config{KforgeBinary: self, Cluster: config.Default(), Host: h, Out: reporter.Discard(), Now: time.Now},
		Facts:    f,
		Services: services.For(h, f, self),
		NodeName: "node1", AdvertiseAddress: "10.0.0.5", Endpoint: "10.0.0.5:6443",
		CACertDirs: []string{"/etc/ssl/certs"},
	}
	d.Results.RuntimeFromOS = true
	return d, h
}

const ciHost = "uid=0\nhostname=node1\ncpus=2\nmemkb=4000000\ncgroupfs=tmpfs\npid1=sh\ncapeff=000001fffeffffff\nswaps=0\n"

func TestInitOnAFakeHost(t *testing.T) {
	d, h := fakeNode(t, ciHost)
	if err := Execute(context.Background(), Init(), d, Options{NoAPI: true}); err != nil {
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
	for _, svc := range []string{"containerd", "kubelet"} {
		f, ok := files["/var/lib/kforge/supervisor/services/"+svc+".yaml"]
		if !ok {
			t.Errorf("no supervisor service file for %s; files: %v", svc, h.Paths())
			continue
		}
		if !strings.Contains(string(f.Data), "/"+svc) {
			t.Errorf("%s service:\n%s", svc, f.Data)
		}
	}
	if _, ok := files[layout.KforgeBinary]; !ok {
		t.Errorf("kforge itself was not installed for the supervisor")
	}
	if calls := strings.Join(h.Calls(), "\n"); !strings.Contains(calls, "setsid -f") || strings.Contains(calls, "systemctl") {
		t.Errorf("without systemd the supervisor runs the services:\n%s", calls)
	}
	if k := string(files["/var/lib/kubelet/config.yaml"].Data); !strings.Contains(k, "failCgroupV1: false") || !strings.Contains(k, "cgroupDriver: cgroupfs") {
		t.Errorf("kubelet config on cgroup v1 without systemd:\n%s", k)
	}
}

func TestInitOnASystemdHost(t *testing.T) {
	d, h := fakeNode(t, "uid=0\nhostname=node1\ncpus=2\nmemkb=4000000\ncgroupfs=cgroup2fs\npid1=systemd\nsystemd_dir=yes\ncapeff=000001ffffffffff\nswaps=0\n")
	if err := Execute(context.Background(), Init(), d, Options{Only: "runtime"}); err != nil {
		t.Fatal(err)
	}
	c := string(h.Files()["/etc/containerd/config.toml"].Data)
	if !strings.Contains(c, "SystemdCgroup = true") || strings.Contains(c, "restrict_oom_score_adj = true") {
		t.Errorf("containerd config on a systemd host with all capabilities:\n%s", c)
	}
	if calls := strings.Join(h.Calls(), "\n"); !strings.Contains(calls, "systemctl restart containerd") || strings.Contains(calls, "setsid") {
		t.Errorf("with systemd, containerd's unit is restarted after a config change:\n%s", calls)
	}
}

func TestPreflightRefusesNonRoot(t *testing.T) {
	d, h := fakeNode(t, strings.Replace(ciHost, "uid=0", "uid=1000", 1))
	err := Execute(context.Background(), Init(), d, Options{NoAPI: true})
	if err == nil || !strings.Contains(err.Error(), "preflight") || !strings.Contains(err.Error(), "root") {
		t.Fatalf("want a preflight error about root, got %v", err)
	}
	if len(h.Paths()) != 0 {
		t.Errorf("a failed preflight wrote %v", h.Paths())
	}
}

func TestPreflightPortsAndLeftovers(t *testing.T) {
	run := func(probe string, ignore ...string) error {
		d, h := fakeNode(t, ciHost)
		h.OnFunc(func(c host.Cmd) fake.Answer {
			if strings.Contains(c.Argv[2], "/proc/net/tcp") {
				return fake.Answer{Stdout: probe}
			}
			return fake.Answer{}
		}, "sh", "-c")
		d.IgnorePreflight = ignore
		return Execute(context.Background(), Init(), d, Options{Only: "preflight"})
	}
	// 0x192B is 6443, 0x2A3A is 10810 (not kforge's).
	err := run("listen=192B 2A3A\ndiskfree=50000\nours=\n")
	if err == nil || !strings.Contains(err.Error(), "[Port-6443]") || strings.Contains(err.Error(), "10810") || !strings.Contains(err.Error(), "--ignore-preflight-errors") {
		t.Errorf("port 6443 in use: %v", err)
	}
	if err := run("listen=192B\ndiskfree=50000\nours=\n", "port-6443"); err != nil {
		t.Errorf("an ignored check still fails: %v", err)
	}
	if err := run("listen=192B\ndiskfree=50000\nours=yes\n"); err != nil {
		t.Errorf("a re-run on kforge's own node fails on its own ports: %v", err)
	}
	err = run("listen=\ndiskfree=100\nours=\nleftover=/etc/kubernetes/kubelet.conf\n")
	if err == nil || !strings.Contains(err.Error(), "[DiskSpace]") || !strings.Contains(err.Error(), "[Leftovers] /etc/kubernetes/kubelet.conf") {
		t.Errorf("disk and leftovers: %v", err)
	}
	if err := run("listen=\ndiskfree=100\nleftover=/etc/kubernetes/kubelet.conf\n", "all"); err != nil {
		t.Errorf("--ignore-preflight-errors=all: %v", err)
	}
}
