// Package controlplanetest runs a real control plane for tests: the etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler binaries that
// `make artifacts` builds, started as processes under a temporary root with
// exactly the command lines of the static pod manifests kforge renders.
// Only host paths (/etc/kubernetes, /var/lib/etcd) are moved under the
// root and the API server gets a free port through the manifests' BindPort,
// so a flag kforge renders wrong makes a component fail here. Readiness is
// checked with the manifests' own probes, and every path a flag names must
// be inside a hostPath volume the manifest mounts.
package controlplanetest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/internal/testtier"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/kubeconfig"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/providers/local"
	"kforge.dev/kforge/templates"
)

// Components in start order.
const (
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
)

// Bounds of the waits, generous for a loaded two-core machine.
const (
	startTimeout = 3 * time.Minute
	stopTimeout  = 15 * time.Second
	lockTimeout  = 8 * time.Minute
)

// Options say what to start.
type Options struct {
	// Cluster is the cluster file; config.Default() when nil.
	Cluster *config.Cluster
	// NodeName is the control-plane node's name; "cp1" when empty.
	NodeName string
	// WithoutControllers starts only etcd and the API server.
	WithoutControllers bool
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Root holds the node's files: Root/etc/kubernetes/pki/ca.crt is the
	// host's /etc/kubernetes/pki/ca.crt.
	Root string
	// Host is a local Host rooted at Root: kforge code reading
	// /etc/kubernetes/admin.conf through it reads the control plane's.
	Host             *local.Host
	Cluster          *config.Cluster
	NodeName         string
	AdvertiseAddress string
	// Port is the API server's secure port and Server its URL.
	Port   int
	Server string
	// Pods are the rendered static pods by component name.
	Pods map[string]*corev1.Pod

	logs map[string]string
}

// Start runs a control plane for t and stops it when t ends. It skips t
// when the binaries are not built or another process holds one of the
// fixed ports (etcd's 2379-2381, 10257, 10259).
func Start(t testing.TB, opt Options) *ControlPlane {
	t.Helper()
	c := opt.Cluster
	if c == nil {
		c = config.Default()
	}
	imgs, err := images.For(c.KubernetesVersion)
	if err != nil {
		t.Fatal(err)
	}
	bins := binaries(t, imgs.Versions)
	lock(t)
	for _, p := range []int{layout.EtcdClientPort, layout.EtcdPeerPort, layout.EtcdMetricsPort, layout.ControllerManagerPort, layout.SchedulerPort} {
		if err := portFree(p); err != nil {
			t.Skipf("port %d is taken (%v): another control plane runs on this machine; stop it to run this test", p, err)
		}
	}
	cp := &ControlPlane{
		Root:             t.TempDir(),
		Cluster:          c,
		NodeName:         opt.NodeName,
		AdvertiseAddress: "127.0.0.1",
		Port:             freePort(t),
		logs:             map[string]string{},
	}
	if cp.NodeName == "" {
		cp.NodeName = "cp1"
	}
	cp.Host = local.Rooted(cp.Root)
	cp.Server = "https://" + net.JoinHostPort(cp.AdvertiseAddress, strconv.Itoa(cp.Port))
	cp.writePKI(t)
	cp.render(t, imgs)

	order := []string{Etcd, APIServer}
	if !opt.WithoutControllers {
		order = append(order, ControllerManager, Scheduler)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range order {
				if cp.logs[name] != "" {
					t.Logf("last lines of %s's log:\n%s", name, cp.LogTail(name, 40))
				}
			}
		}
	})
	for _, name := range order {
		cp.run(t, name, bins[name])
	}
	return cp
}

// binaries finds the built binaries in the artifacts cache that
// scripts/build-artifacts.sh fills.
func binaries(t testing.TB, v images.Versions) map[string]string {
	t.Helper()
	testtier.Integration(t, "the control plane's binaries from `make artifacts`")
	cache := images.DefaultCache()
	bins := map[string]string{
		Etcd:              cache.Binary("etcd", v.Etcd, "etcd"),
		APIServer:         cache.Binary("kubernetes", v.Kubernetes, APIServer),
		ControllerManager: cache.Binary("kubernetes", v.Kubernetes, ControllerManager),
		Scheduler:         cache.Binary("kubernetes", v.Kubernetes, Scheduler),
	}
	for _, b := range bins {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("%s is not built: run `make artifacts` first (%v)", b, err)
		}
	}
	return bins
}

// Binary is the path of a Kubernetes binary (kubectl, kube-proxy, ...) of
// the cluster's version in the artifacts cache; it skips t when the binary
// is not built.
func Binary(t testing.TB, c *config.Cluster, name string) string {
	t.Helper()
	if c == nil {
		c = config.Default()
	}
	imgs, err := images.For(c.KubernetesVersion)
	if err != nil {
		t.Fatal(err)
	}
	k8s := filepath.Dir(binaries(t, imgs.Versions)[APIServer])
	p := filepath.Join(k8s, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s is not built: run `make artifacts` first (%v)", p, err)
	}
	return p
}

// lock makes control planes of concurrently running test binaries take
// turns: they share etcd's and the controllers' fixed ports.
func lock(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kforge-controlplanetest.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var last error
	err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, lockTimeout, true, func(context.Context) (bool, error) {
		last = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if last != nil && !errors.Is(last, syscall.EWOULDBLOCK) {
			return false, last
		}
		return last == nil, nil
	})
	if err != nil {
		f.Close()
		t.Fatalf("lock %s: %v (another test's control plane kept it for %s)", f.Name(), last, lockTimeout)
	}
	t.Cleanup(func() { f.Close() })
}

func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writePKI issues the PKI and the kubeconfigs as `kforge init` does, under
// Root.
func (cp *ControlPlane) writePKI(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	ip := net.ParseIP(cp.AdvertiseAddress)
	n := cp.Cluster.Networking
	if _, err := certs.Ensure(ctx, cp.Host, certs.Spec{
		NodeName: cp.NodeName, AdvertiseAddress: ip,
		DNSDomain: n.DNSDomain, ServiceSubnet: n.ServiceSubnet,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := kubeconfig.Ensure(ctx, cp.Host, kubeconfig.Spec{
		ClusterName: cp.Cluster.Name, NodeName: cp.NodeName,
		AdvertiseAddress: ip, BindPort: cp.Port,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.EnsureEncryptionConfig(ctx, cp.Host); err != nil {
		t.Fatal(err)
	}
	policy, err := templates.AuditPolicy()
	if err == nil {
		err = cp.Host.WriteFile(ctx, layout.AuditPolicy, policy, layout.SecretMode)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// render renders the static pods as the control-plane phases fill them
// and parses them back.
func (cp *ControlPlane) render(t testing.TB, imgs images.Set) {
	t.Helper()
	n := cp.Cluster.Networking
	files, err := templates.RenderControlPlane(templates.ControlPlane{
		Images: templates.ControlPlaneImages{
			Etcd: imgs.Etcd, APIServer: imgs.APIServer,
			ControllerManager: imgs.ControllerManager, Scheduler: imgs.Scheduler,
		},
		EtcdVersion:      imgs.Versions.Etcd,
		NodeName:         cp.NodeName,
		AdvertiseAddress: cp.AdvertiseAddress,
		BindPort:         cp.Port,
		ServiceSubnet:    n.ServiceSubnet,
		PodSubnet:        n.PodSubnet,
		ClusterName:      cp.Cluster.Name,
		DNSDomain:        n.DNSDomain,
	})
	if err != nil {
		t.Fatal(err)
	}
	cp.Pods = map[string]*corev1.Pod{}
	for _, f := range files {
		var pod corev1.Pod
		if err := yaml.UnmarshalStrict(f.Data, &pod); err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		if len(pod.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers, want 1", f.Path, len(pod.Spec.Containers))
		}
		cp.Pods[pod.Name] = &pod
	}
}

// Path maps a host path to where it lives under Root.
func (cp *ControlPlane) Path(p string) string { return cp.Host.Path(p) }

// movedDirs are the host directories whose files the control plane reads
// and writes; their paths in flags move under Root.
var movedDirs = []string{layout.KubernetesDir, layout.EtcdDataDir, layout.AuditLogDir}

// Args returns the component's rendered command line with host paths
// moved under Root. It fails t when a path a flag names is not inside a
// hostPath volume the pod mounts at the same path: in a real static pod
// the file would not be there.
func (cp *ControlPlane) Args(t testing.TB, component string) []string {
	t.Helper()
	args, err := cp.commandLine(component)
	if err != nil {
		t.Fatal(err)
	}
	return args
}

func (cp *ControlPlane) commandLine(component string) ([]string, error) {
	pod := cp.Pods[component]
	if pod == nil {
		return nil, fmt.Errorf("no rendered manifest for %s", component)
	}
	c := pod.Spec.Containers[0]
	if len(c.Command) == 0 || c.Command[0] != component {
		return nil, fmt.Errorf("%s: command %q does not start with %s", component, c.Command, component)
	}
	var args []string
	var errs []error
	for _, a := range c.Command[1:] {
		name, value, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(name, "--") {
			return nil, fmt.Errorf("%s: argument %q is not --name=value", component, a)
		}
		var parts []string
		for _, v := range strings.Split(value, ",") {
			if moved(v) {
				if !mounted(pod, v) {
					errs = append(errs, fmt.Errorf("%s: %s names %s, which no hostPath volume of the pod mounts", component, name, v))
				}
				v = cp.Path(v)
			}
			parts = append(parts, v)
		}
		args = append(args, name+"="+strings.Join(parts, ","))
	}
	if component == APIServer && net.ParseIP(cp.AdvertiseAddress).IsLoopback() {
		// Kubernetes 1.37 refuses a loopback address for the kubernetes
		// Service's endpoint; the test control plane listens on loopback
		// only and has no Service network to keep that endpoint for.
		args = append(args, "--endpoint-reconciler-type=none")
	}
	return args, errors.Join(errs...)
}

func moved(v string) bool {
	for _, d := range movedDirs {
		if v == d || strings.HasPrefix(v, d+"/") {
			return true
		}
	}
	return false
}

// mounted reports whether p is inside a volume mount of pod whose hostPath
// is the mount path itself, as kforge's manifests mount host directories.
func mounted(pod *corev1.Pod, p string) bool {
	host := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			host[v.Name] = v.HostPath.Path
		}
	}
	for _, m := range pod.Spec.Containers[0].VolumeMounts {
		if host[m.Name] != m.MountPath {
			continue
		}
		if p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

// run starts one component and waits for its manifest's readiness (or
// startup) probe to pass.
func (cp *ControlPlane) run(t testing.TB, name, bin string) {
	t.Helper()
	args := cp.Args(t, name)
	logPath := filepath.Join(cp.Root, "log", name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	cp.logs[name] = logPath
	p, err := startProcess(bin, args, logPath)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { p.stop() })
	probe := readinessProbe(cp.Pods[name])
	if probe == nil || probe.HTTPGet == nil {
		t.Fatalf("%s: the manifest has no HTTP readiness or startup probe", name)
	}
	url := probeURL(probe.HTTPGet, cp.AdvertiseAddress)
	if err := waitHTTP(p, url, startTimeout); err != nil {
		t.Fatalf("%s did not become ready: %v\n%s's command line: %s %s\nlast lines of its log:\n%s",
			name, err, name, bin, strings.Join(args, " "), cp.LogTail(name, 40))
	}
	t.Logf("%s ready at %s", name, url)
}

func readinessProbe(pod *corev1.Pod) *corev1.Probe {
	c := pod.Spec.Containers[0]
	if c.ReadinessProbe != nil {
		return c.ReadinessProbe
	}
	return c.StartupProbe
}

// probeURL is where the kubelet sends an HTTP probe; a probe without a
// host goes to the pod's IP, the node's address for host-network pods.
func probeURL(g *corev1.HTTPGetAction, podIP string) string {
	h := g.Host
	if h == "" {
		h = podIP
	}
	return strings.ToLower(string(g.Scheme)) + "://" + net.JoinHostPort(h, g.Port.String()) + g.Path
}

// waitHTTP polls url as the kubelet probes it (no client certificate, no
// server verification) until it answers 200, the process exits or timeout
// passes.
func waitHTTP(p *process, url string, timeout time.Duration) error {
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	defer client.CloseIdleConnections()
	last := "no answer"
	exited := errors.New("the process exited")
	err := wait.PollUntilContextTimeout(context.Background(), kube.PollInterval, timeout, true, func(context.Context) (bool, error) {
		select {
		case <-p.done:
			return false, exited
		default:
		}
		resp, err := client.Get(url)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		body := make([]byte, 512)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return true, nil
		}
		last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body[:n])))
		return false, nil
	})
	switch {
	case errors.Is(err, exited):
		return fmt.Errorf("the process exited (%v) while %s was probed; last answer: %s", p.err, url, last)
	case err != nil:
		return fmt.Errorf("%s not ready after %s; last answer: %s", url, timeout, last)
	}
	return nil
}

// LogTail returns the last n lines of a component's output.
func (cp *ControlPlane) LogTail(component string, n int) string {
	f, err := os.Open(cp.logs[component])
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// Kubeconfig returns one of the node's kubeconfig files by name: admin,
// super-admin, kubelet, controller-manager or scheduler.
func (cp *ControlPlane) Kubeconfig(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(cp.Path(filepath.Join(layout.KubernetesDir, name+".conf")))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Client returns a client with one of the node's kubeconfigs.
func (cp *ControlPlane) Client(t testing.TB, name string) *kube.Client {
	t.Helper()
	c, err := kube.New(cp.Kubeconfig(t, name), "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}
