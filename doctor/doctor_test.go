package doctor

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"kforge.dev/kforge/host"
	hostfake "kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/messages"
)

// probeHost is a host whose probe prints facts, over a healthy default.
func probeHost(t *testing.T, over map[string]string) *hostfake.Host {
	t.Helper()
	facts := map[string]string{
		"swap": "0", "ip_forward": "1", "bridge_nf": "1", "kubelet_driver": "systemd", "containerd_systemd": "true",
		"time": fmt.Sprintf("%.3f", float64(time.Now().UnixNano())/1e9), "disk": "40",
		"listen": `LISTEN 0 4096 *:10250 *:* users:(("kubelet",pid=42,fd=20))|LISTEN 0 4096 127.0.0.1:10257 0.0.0.0:* users:(("kube-controller",pid=7,fd=3))|`,
		"cri":    "ok",
	}
	for k, v := range over {
		facts[k] = v
	}
	h := hostfake.New("node1")
	h.OnFunc(func(c host.Cmd) hostfake.Answer {
		var b strings.Builder
		for k, v := range facts {
			if v != "<absent>" {
				fmt.Fprintf(&b, "%s=%s\n", k, v)
			}
		}
		return hostfake.Answer{Stdout: b.String()}
	}, "sh", "-c")
	return h
}

func checks(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Check)
	}
	return out
}

// TestHostChecks produces each host condition and sees it named; a
// healthy host gives nothing.
func TestHostChecks(t *testing.T) {
	ctx := context.Background()
	fs, err := Host(ctx, probeHost(t, nil), time.Now())
	if err != nil || len(fs) != 0 {
		t.Fatalf("a healthy host: %v %v", fs, err)
	}
	for _, tc := range []struct {
		check string
		facts map[string]string
		want  string
	}{
		{CheckSwap, map[string]string{"swap": "2097152"}, "swap is on (2048 MiB"},
		{CheckIPForward, map[string]string{"ip_forward": "0"}, "net.ipv4.ip_forward is 0"},
		{CheckBridgeNF, map[string]string{"bridge_nf": "missing"}, "br_netfilter module is not loaded"},
		{CheckBridgeNF, map[string]string{"bridge_nf": "0"}, "bridge-nf-call-iptables is 0"},
		{CheckCgroupDriver, map[string]string{"kubelet_driver": "cgroupfs"}, "cgroupDriver is cgroupfs but containerd's runc has SystemdCgroup = true"},
		{CheckCRI, map[string]string{"cri": "connect: connection refused"}, "does not answer on /run/containerd/containerd.sock: connect: connection refused"},
		{CheckPorts, map[string]string{"listen": `LISTEN 0 5 127.0.0.1:10250 0.0.0.0:* users:(("python3",pid=99,fd=3))|`}, "port 10250, which kubelet needs, is held by python3 (pid 99)"},
		{CheckClock, map[string]string{"time": fmt.Sprintf("%.3f", float64(time.Now().Add(-90*time.Second).UnixNano())/1e9)}, "its clock is -1m30"},
		{CheckDisk, map[string]string{"disk": "93"}, "/var/lib is 93% full"},
	} {
		t.Run(tc.check+" "+tc.want, func(t *testing.T) {
			fs, err := Host(ctx, probeHost(t, tc.facts), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != 1 || fs[0].Check != tc.check || !strings.Contains(fs[0].Problem, tc.want) || fs[0].Fix == "" || fs[0].Where != "node1" {
				t.Fatalf("findings %v, want one %s containing %q with a fix", fs, tc.check, tc.want)
			}
			localized(t, fs)
		})
	}
	// No runtime configured: no CRI finding; the same machine: no clock.
	fs, _ = Host(ctx, probeHost(t, map[string]string{"cri": "<absent>", "time": "1"}), time.Time{})
	if len(fs) != 0 {
		t.Errorf("a machine without containerd's config, checked locally: %v", fs)
	}
}

// TestClusterChecks produces each cluster condition and sees it named.
func TestClusterChecks(t *testing.T) {
	ready := true
	dns := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns-abc", Namespace: "kube-system", Labels: map[string]string{discoveryv1.LabelServiceName: "kube-dns"}},
		Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
	healthy := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp"}, Status: corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		Images:     []corev1.ContainerImage{{Names: []string{"kforge.dev/echo:v1"}}},
	}}
	fs, err := Cluster(context.Background(), fake.NewClientset(healthy, dns))
	if err != nil || len(fs) != 0 {
		t.Fatalf("a healthy cluster: %v %v", fs, err)
	}

	lost := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Message: "Kubelet stopped posting node status."},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionTrue, Message: "kubelet has disk pressure"},
	}}}
	pod := func(name, image, reason string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "w1"},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: image, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}}}}
	}
	noDNS := dns.DeepCopy()
	noDNS.Endpoints[0].Conditions.Ready = new(false)
	fs, err = Cluster(context.Background(), fake.NewClientset(healthy, lost, noDNS,
		pod("missing", "example.com/app:v1", "ImagePullBackOff"), pod("elsewhere", "kforge.dev/echo:v1", "ErrImageNeverPull")))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(checks(fs), " ")
	if got != "disk dns images images kubelet-api" {
		t.Fatalf("checks %q; findings:\n%v", got, fs)
	}
	localized(t, fs)
	text := fmt.Sprint(fs)
	for _, want := range []string{
		"no CoreDNS pod is ready", "DiskPressure: kubelet has disk pressure",
		"waits for image example.com/app:v1, which no node's containerd has (ImagePullBackOff)",
		"cannot get image kforge.dev/echo:v1 on node w1, though another node has it", "has not reported since",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("findings lack %q:\n%s", want, text)
		}
	}
}

// localized checks that each finding reads in Chinese with every fact
// English shows: no message id left, the same numbers and names.
func localized(t *testing.T, fs []Finding) {
	t.Helper()
	zh, err := messages.New("zh")
	if err != nil {
		t.Fatal(err)
	}
	digits := regexp.MustCompile(`[0-9]+`)
	for _, f := range fs {
		en, cn := f.String(), f.Localized(zh)
		if strings.Contains(en, "doctor.") || strings.Contains(cn, "doctor.") || !strings.Contains(cn, "处理：") {
			t.Errorf("finding not in the catalogues:\n%s\n%s", en, cn)
		}
		if a, b := digits.FindAllString(en, -1), digits.FindAllString(cn, -1); len(b) < len(a)-1 {
			t.Errorf("the Chinese finding lost facts:\n%s\n%s", en, cn)
		}
	}
}
