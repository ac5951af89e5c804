package phases

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/supervisor"
)

// fakeWorker is a Data for `kforge join` on a fake CI-like host, joining
// the cluster at 10.0.0.5:6443 whose CA is ca.
func fakeWorker(t *testing.T, probe string) (*Data, *fake.Host, []byte) {
	t.Helper()
	d, h := fakeNode(t, probe)
	d.NodeName, d.AdvertiseAddress = "w1", "10.0.0.6"
	ca := testCAPEM(t)
	pin, _ := discovery.CAHashes(ca)
	d.Discovery = &discovery.Options{
		Endpoint: "10.0.0.5:6443", CACertHashes: pin,
		Token: discovery.Token{ID: "abcdef", Secret: "0123456789abcdef"},
	}
	return d, h, ca
}

// discovered makes d skip discovery, as if it had found a cluster with
// two hosts (kube-router) and CA ca.
func discovered(d *Data, ca []byte) {
	c := config.Default()
	c.Hosts = append(c.Hosts, config.Host{Address: "10.0.0.6", Role: config.RoleWorker})
	d.Cluster = c
	d.Endpoint = "10.0.0.5:6443"
	hashes, _ := discovery.CAHashes(ca)
	d.Results.Discovered = &discovery.Result{Server: "https://10.0.0.5:6443", CACert: ca, CAHashes: hashes, User: "system:bootstrap:abcdef"}
}

func testCAPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func kubeconfigFor(t *testing.T, server string, ca []byte) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["default-cluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["default-auth"] = &clientcmdapi.AuthInfo{ClientCertificate: "/var/lib/kubelet/pki/kubelet-client-current.pem"}
	cfg.Contexts["default-context"] = &clientcmdapi.Context{Cluster: "default-cluster", AuthInfo: "default-auth"}
	cfg.CurrentContext = "default-context"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// listening makes the fake host report TCP ports in LISTEN, as
// /proc/net/tcp shows them.
func listening(h *fake.Host, ports ...string) {
	h.On(fake.Answer{Stdout: "listen=" + strings.Join(ports, " ") + "\nours=\n"}, "sh", "-c", preflightScript)
}

func TestJoinPreflight(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, d *Data, h *fake.Host, ca []byte)
		joined bool
		want   []string // empty: passes
	}{
		{"a fresh host", func(t *testing.T, d *Data, h *fake.Host, ca []byte) {}, false, nil},
		{"not root", func(t *testing.T, d *Data, h *fake.Host, ca []byte) { d.Facts.UID = 1000 }, false, []string{"[IsPrivilegedUser]", "uid 1000"}},
		{"a control plane", func(t *testing.T, d *Data, h *fake.Host, ca []byte) {
			h.WriteFile(ctx, layout.ManifestsDir+"/kube-apiserver.yaml", []byte("x"), 0o600)
		}, false, []string{"[ControlPlane]", "runs a control plane"}},
		{"another cluster's kubelet.conf", func(t *testing.T, d *Data, h *fake.Host, ca []byte) {
			h.WriteFile(ctx, layout.KubeletConf, kubeconfigFor(t, "https://10.9.9.9:6443", testCAPEM(t)), 0o600)
		}, false, []string{"[KubeletConf]", "left from another cluster", "its CA is sha256:", "the join pins " + "sha256:", "kforge reset"}},
		{"this cluster's kubelet.conf, its kubelet on 10250", func(t *testing.T, d *Data, h *fake.Host, ca []byte) {
			h.WriteFile(ctx, layout.KubeletConf, kubeconfigFor(t, "https://10.0.0.5:6443", ca), 0o600)
			listening(h, "280A")
		}, true, nil},
		{"this cluster's kubelet.conf with a CA file", func(t *testing.T, d *Data, h *fake.Host, ca []byte) {
			kc := strings.Replace(string(kubeconfigFor(t, "https://10.0.0.5:6443", nil)), "    server:", "    certificate-authority: /etc/kubernetes/pki/ca.crt\n    server:", 1)
			h.WriteFile(ctx, layout.KubeletConf, []byte(kc), 0o600)
			h.WriteFile(ctx, layout.CACert, ca, 0o644)
		}, true, nil},
		{"another kubelet on 10250", func(t *testing.T, d *Data, h *fake.Host, ca []byte) {
			listening(h, "0016", "280A")
		}, false, []string{"[Port-10250]", "another kubelet"}},
		{"another kubelet on 10250, ignored", func(t *testing.T, d *Data, h *fake.Host, ca []byte) {
			listening(h, "280A")
			d.IgnorePreflight = []string{"port-10250"}
		}, false, nil},
		{"no pin: kubelet.conf of the endpoint", func(t *testing.T, d *Data, h *fake.Host, ca []byte) {
			d.Discovery.CACertHashes, d.Discovery.UnsafeSkipCAVerification = nil, true
			h.WriteFile(ctx, layout.KubeletConf, kubeconfigFor(t, "https://10.0.0.5:6443", testCAPEM(t)), 0o600)
		}, true, nil},
		{"no pin: kubelet.conf of another server", func(t *testing.T, d *Data, h *fake.Host, ca []byte) {
			d.Discovery.CACertHashes, d.Discovery.UnsafeSkipCAVerification = nil, true
			h.WriteFile(ctx, layout.KubeletConf, kubeconfigFor(t, "https://10.0.0.7:6443", ca), 0o600)
		}, false, []string{"[KubeletConf]", "talks to https://10.0.0.7:6443, not https://10.0.0.5:6443"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, h, ca := fakeWorker(t, ciHost)
			tc.setup(t, d, h, ca)
			before := len(h.Paths())
			err := Execute(ctx, Join(), d, Options{Only: "preflight"})
			if len(tc.want) == 0 && err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.want {
				if err == nil || !strings.Contains(err.Error(), s) {
					t.Errorf("got %v, want it to say %q", err, s)
				}
			}
			if d.Results.Joined != tc.joined {
				t.Errorf("Joined %v, want %v", d.Results.Joined, tc.joined)
			}
			if len(h.Paths()) != before || d.Results.Wrote {
				t.Errorf("preflight wrote to the host: %v", h.Paths())
			}
		})
	}
}

// TestKubeletStartRestartsOnlyAKubeletThatHasNotBootstrapped: the kubelet
// writes kubelet.conf itself after its TLS bootstrap; a re-run must not
// take that for a change of configuration.
func TestKubeletStartRestartsOnlyAKubeletThatHasNotBootstrapped(t *testing.T) {
	ctx := context.Background()
	d, h, ca := fakeWorker(t, ciHost)
	discovered(d, ca)
	svcFile := supervisor.ServiceFile(layout.SupervisorDir, "kubelet")
	launches := func() int { return strings.Count(strings.Join(h.Calls(), "\n"), "setsid -f") }

	if err := kubeletStart(ctx, d); err != nil {
		t.Fatal(err)
	}
	first := string(h.Files()[svcFile].Data)
	if !strings.Contains(first, "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf") || !strings.Contains(first, "--hostname-override=w1") {
		t.Fatalf("kubelet service:\n%s", first)
	}
	if !d.Results.Wrote {
		t.Error("kubelet-start did not mark the host as written")
	}
	k := string(h.Files()["/var/lib/kubelet/config.yaml"].Data)
	if !strings.Contains(k, "- 10.96.0.10") || !strings.Contains(k, "clusterDomain: cluster.local") {
		t.Errorf("kubelet config:\n%s", k)
	}

	// The kubelet bootstraps and writes kubelet.conf.
	h.WriteFile(ctx, layout.KubeletConf, kubeconfigFor(t, "https://10.0.0.5:6443", ca), 0o600)
	n := launches()
	if err := kubeletStart(ctx, d); err != nil {
		t.Fatal(err)
	}
	if again := string(h.Files()[svcFile].Data); again != first {
		t.Errorf("a re-run changed the kubelet's service, so the supervisor would restart it:\n%s\n---\n%s", first, again)
	}
	if got := launches() - n; got != 1 {
		t.Errorf("a re-run on a bootstrapped kubelet started the supervisor %d times, want 1 (ensure only)", got)
	}

	// A kubelet left without kubelet.conf is stopped first, so that it
	// starts again with this run's bootstrap kubeconfig.
	h.Remove(ctx, layout.KubeletConf)
	n = launches()
	if err := kubeletStart(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := launches() - n; got != 2 {
		t.Errorf("a kubelet that has not bootstrapped: %d supervisor starts, want 2 (stop, then ensure)", got)
	}
}

func TestJoinDiscoveryWritesTheCAAndTheBootstrapKubeconfig(t *testing.T) {
	ctx := context.Background()
	d, h, ca := fakeWorker(t, ciHost)
	discovered(d, ca)
	if err := joinDiscovery(ctx, d); err != nil {
		t.Fatal(err)
	}
	files := h.Files()
	if f := files[layout.CACert]; string(f.Data) != string(ca) || f.Mode != 0o644 {
		t.Errorf("%s: mode %v\n%s", layout.CACert, f.Mode, f.Data)
	}
	f := files[layout.BootstrapKubeletConf]
	if f.Mode != 0o600 {
		t.Errorf("%s mode %v, want 0600", layout.BootstrapKubeletConf, f.Mode)
	}
	cfg, err := clientcmd.Load(f.Data)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://10.0.0.5:6443" || rc.BearerToken != "abcdef.0123456789abcdef" || string(rc.CAData) != string(ca) {
		t.Errorf("bootstrap kubeconfig:\n%s", f.Data)
	}

	// A host that joined before keeps its kubelet.conf and gets no token.
	d2, h2, _ := fakeWorker(t, ciHost)
	discovered(d2, ca)
	d2.Results.Joined = true
	if err := joinDiscovery(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if _, ok := h2.Files()[layout.BootstrapKubeletConf]; ok {
		t.Error("a joined host got a bootstrap kubeconfig")
	}
}

func TestJoinCleanupLeavesTheWorkerAsBefore(t *testing.T) {
	ctx := context.Background()
	d, h, ca := fakeWorker(t, ciHost)
	discovered(d, ca)
	h.WriteFile(ctx, "/usr/local/bin/kubelet", []byte("kubelet"), 0o755)
	h.WriteFile(ctx, layout.KforgeBinary, []byte("kforge"), 0o755)
	h.WriteFile(ctx, supervisor.ServiceFile(layout.SupervisorDir, "containerd"), []byte("name: containerd\n"), 0o644)
	if err := joinDiscovery(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := kubeletStart(ctx, d); err != nil {
		t.Fatal(err)
	}
	h.WriteFile(ctx, layout.KubeletConf, []byte("written by the kubelet"), 0o600)
	h.WriteFile(ctx, "/var/lib/kubelet/pki/kubelet-client-current.pem", []byte("cert"), 0o600)
	h.WriteFile(ctx, layout.CNIConfDir+"/10-kuberouter.conflist", []byte("{}"), 0o644)
	if err := Execute(ctx, JoinCleanup(), d, Options{}); err != nil {
		t.Fatal(err)
	}
	left := strings.Join(h.Paths(), "\n")
	for _, gone := range []string{layout.KubeletConf, layout.BootstrapKubeletConf, layout.CACert, "/var/lib/kubelet/", "kubelet.service", "10-kuberouter", supervisor.ServiceFile(layout.SupervisorDir, "kubelet")} {
		if strings.Contains(left, gone) {
			t.Errorf("%s is left after the cleanup:\n%s", gone, left)
		}
	}
	for _, kept := range []string{"/usr/local/bin/kubelet", supervisor.ServiceFile(layout.SupervisorDir, "containerd")} {
		if !strings.Contains(left, kept) {
			t.Errorf("the cleanup removed %s", kept)
		}
	}
	calls := strings.Join(h.Calls(), "\n")
	for _, want := range []string{"rmdir", "tasks kill", "umount", "KUBE-"} {
		if !strings.Contains(calls, want) {
			t.Errorf("the cleanup ran nothing with %q", want)
		}
	}
}

func TestJoinPhasesNeedJoinData(t *testing.T) {
	d, _ := fakeNode(t, ciHost)
	if err := Execute(context.Background(), Join(), d, Options{Only: "kubelet-start"}); err == nil || !strings.Contains(err.Error(), "kforge join") {
		t.Errorf("kubelet-start outside a join: %v", err)
	}
}
