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

// The cluster file's extraArgs reach each component's command line and the
// kubelet's flags; the hardening files are written readable by root only.
func TestInitHardeningAndExtraArgs(t *testing.T) {
	d, h := fakeNode(t, ciHost)
	d.Cluster.APIServer.ExtraArgs = map[string]string{"event-ttl": "2h", "audit-log-maxage": "7"}
	d.Cluster.ControllerManager.ExtraArgs = map[string]string{"node-monitor-grace-period": "20s"}
	d.Cluster.Scheduler.ExtraArgs = map[string]string{"v": "2"}
	d.Cluster.Etcd.ExtraArgs = map[string]string{"quota-backend-bytes": "8589934592"}
	d.Cluster.Kubelet.ExtraArgs = map[string]string{"max-pods": "200"}
	if err := Execute(context.Background(), Init(), d, Options{NoAPI: true}); err != nil {
		t.Fatal(err)
	}
	files := h.Files()
	for p, want := range map[string][]string{
		layout.ManifestsDir + "/kube-apiserver.yaml":          {"--event-ttl=2h", "--audit-log-maxage=7", "--profiling=false", "--encryption-provider-config=" + layout.EncryptionConfig},
		layout.ManifestsDir + "/kube-controller-manager.yaml": {"--node-monitor-grace-period=20s", "--profiling=false"},
		layout.ManifestsDir + "/kube-scheduler.yaml":          {"--v=2", "--profiling=false"},
		layout.ManifestsDir + "/etcd.yaml":                    {"--quota-backend-bytes=8589934592"},
		layout.KubeletFlagsEnv:                                {"--max-pods=200"},
	} {
		for _, w := range want {
			if !strings.Contains(string(files[p].Data), w) {
				t.Errorf("%s lacks %s", p, w)
			}
		}
	}
	if strings.Contains(string(files[layout.ManifestsDir+"/kube-apiserver.yaml"].Data), "--audit-log-maxage=30") {
		t.Error("the overridden audit-log-maxage=30 is still there")
	}
	for _, p := range []string{layout.EncryptionConfig, layout.AuditPolicy, layout.KubeletConfig, layout.KubeletFlagsEnv} {
		f, ok := files[p]
		if !ok || f.Mode.Perm() != 0o600 {
			t.Errorf("%s: written %v, mode %v; want 0600", p, ok, f.Mode.Perm())
		}
	}
	if _, ok := files[layout.KubeletSysctlConf]; !ok {
		t.Errorf("no %s", layout.KubeletSysctlConf)
	}
	// The fake host reads no sysctls back, so the kubelet must not be
	// told its kernel holds them.
	if k := string(files[layout.KubeletConfig].Data); !strings.Contains(k, "protectKernelDefaults: false") {
		t.Errorf("kubelet config without the kernel's settings read back:\n%s", k)
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
