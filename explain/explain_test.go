package explain_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"

	"kforge.dev/kforge/explain"
	"kforge.dev/kforge/messages"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func at(s int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(s) * time.Second)) }

func ptr[T any](v T) *T { return &v }

func controller(kind, name, uid string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{Kind: kind, Name: name, UID: types.UID(uid), Controller: ptr(true)}}
}

func event(kind, name, reason, source, msg string, s int) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "default", Name: name + "." + reason},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Name: name, Namespace: "default"},
		Reason:         reason, Message: msg, Source: corev1.EventSource{Component: source}, FirstTimestamp: at(s),
	}
}

// web is a Deployment with one ReplicaSet, two Pods, a Service and its
// EndpointSlice, and the events the controllers, the scheduler and the
// kubelet record; scheduled says whether the first pod got a node.
func web(scheduled bool) []runtime.Object {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-abc-x", UID: "p1", Labels: map[string]string{"app": "web", "pod-template-hash": "abc"}, CreationTimestamp: at(2), OwnerReferences: controller("ReplicaSet", "web-abc", "r1")},
	}
	if scheduled {
		pod.Spec.NodeName = "n1"
		pod.Status = corev1.PodStatus{
			PodIP: "10.244.0.5", PodIPs: []corev1.PodIP{{IP: "10.244.0.5"}},
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: at(3)},
				{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: at(4)},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: at(6)},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: at(6)},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "echo", Image: "kforge.dev/echo:v1", ContainerID: "containerd://c0ffee", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(5)}}}},
		}
	} else {
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", LastTransitionTime: at(3)}}
	}
	pod2 := pod.DeepCopy()
	pod2.Name, pod2.UID = "web-abc-y", "p2"
	return []runtime.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "d1", CreationTimestamp: at(0), ResourceVersion: "42",
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, Time: ptr(at(0))}}}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-abc", UID: "r1", CreationTimestamp: at(1), Labels: map[string]string{"pod-template-hash": "abc"}, OwnerReferences: controller("Deployment", "web", "d1")},
			Spec:   appsv1.ReplicaSetSpec{Replicas: ptr(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "abc"}}},
			Status: appsv1.ReplicaSetStatus{ReadyReplicas: 2}},
		pod, pod2,
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"10.244.0.0/24"}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.20", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-xyz", CreationTimestamp: at(7), Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(scheduled)}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-abc-x"}}}},
		event("Deployment", "web", "ScalingReplicaSet", "deployment-controller", "Scaled up replica set web-abc from 0 to 2", 1),
		event("ReplicaSet", "web-abc", "SuccessfulCreate", "replicaset-controller", "Created pod: web-abc-x", 2),
		event("Pod", "web-abc-x", "Scheduled", "default-scheduler", "Successfully assigned default/web-abc-x to n1", 3),
		event("Pod", "web-abc-x", "Started", "kubelet", "Started container echo", 5),
	}
}

func TestTraceDeployment(t *testing.T) {
	c := fake.NewSimpleClientset(web(true)...)
	tr, err := explain.Object(context.Background(), c, "deployment", "default", "web", messages.English())
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Steps) != 7 {
		t.Fatalf("%d steps: %+v", len(tr.Steps), tr.Steps)
	}
	wantTime := []int{0, 1, 2, 3, 4, 4, 7}
	for i, s := range tr.Steps {
		if s.N != i+1 || !s.Done || !s.Time.Equal(at(wantTime[i]).Time) {
			t.Errorf("step %d: n %d done %v time %v, want %v", i+1, s.N, s.Done, s.Time, at(wantTime[i]).Time)
		}
	}
	var out bytes.Buffer
	explain.PrintTrace(&out, tr, messages.English())
	for _, want := range []string{
		"How Deployment default/web became running containers",
		"Deployment default/web uid d1, resourceVersion 42",
		"written by kubectl-client-side-apply (Update)",
		"ReplicaSet web-abc (pod-template-hash abc), 2/2 ready, ownerReference → Deployment web",
		"ScalingReplicaSet (deployment-controller): Scaled up replica set web-abc",
		"Pod web-abc-x has ownerReference → ReplicaSet web-abc",
		"SuccessfulCreate (replicaset-controller): Created pod: web-abc-x",
		"pod web-abc-x spec.nodeName=n1, set by default-scheduler",
		"Scheduled (default-scheduler)",
		"container echo: image kforge.dev/echo:v1, containerd://c0ffee, running since 2026-12-02T10:00:05Z",
		"Started (kubelet): Started container echo",
		"10.244.0.5 is in 10.244.0.0/24, the pod CIDR of node n1",
		"Service web (10.96.0.20 80/TCP→8080) selects it: EndpointSlice web-xyz lists 10.244.0.5, ready=true",
		"the other pods, web-abc-y, took the same path as web-abc-x",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("trace lacks %q:\n%s", want, out.String())
		}
	}
	zh, _ := messages.New("zh")
	tr, _ = explain.Object(context.Background(), c, "deploy", "default", "web", zh)
	out.Reset()
	explain.PrintTrace(&out, tr, zh)
	for _, want := range []string{"是如何变成运行中的容器的", "调度器把 Pod 绑定到节点", "10.244.0.5 属于节点 n1 的 Pod 网段 10.244.0.0/24"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("zh trace lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "explain.") {
		t.Errorf("a message id shows:\n%s", out.String())
	}
}

// A pod the scheduler could not place stops at step 4, saying so.
func TestTracePendingPod(t *testing.T) {
	c := fake.NewSimpleClientset(web(false)...)
	tr, err := explain.Object(context.Background(), c, "pod", "default", "web-abc-x", messages.English())
	if err != nil {
		t.Fatal(err)
	}
	done := map[int]bool{}
	for _, s := range tr.Steps {
		done[s.N] = s.Done
	}
	if !done[1] || !done[2] || !done[3] || done[4] || done[5] || done[6] || done[7] {
		t.Fatalf("steps done: %v", done)
	}
	var out bytes.Buffer
	explain.PrintTrace(&out, tr, messages.English())
	if !strings.Contains(out.String(), "condition PodScheduled=False since 2026-12-02T10:00:03Z (Unschedulable)") || !strings.Contains(out.String(), "no record of this step yet") {
		t.Errorf("pending pod:\n%s", out.String())
	}
	if _, err := explain.Object(context.Background(), c, "service", "default", "web", messages.English()); err == nil || !strings.Contains(err.Error(), "explain a deployment or a pod") {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := explain.Object(context.Background(), c, "pod", "default", "nope", messages.English()); err == nil || !strings.Contains(err.Error(), `"nope" not found`) {
		t.Errorf("missing pod: %v", err)
	}
}

func TestArchitecture(t *testing.T) {
	api := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-apiserver-n1", Labels: map[string]string{"component": "kube-apiserver"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "kube-apiserver", Command: []string{"kube-apiserver",
			"--authorization-mode=Node,RBAC", "--client-ca-file=/etc/kubernetes/pki/ca.crt", "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
			"--enable-bootstrap-token-auth=true", "--etcd-servers=https://127.0.0.1:2379"}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	holder := "n1_0a1b"
	c := fake.NewSimpleClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"10.244.0.0/24"}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
				NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", ContainerRuntimeVersion: "containerd://2.4.2", OSImage: "Debian GNU/Linux 12", KernelVersion: "6.1.0"}}},
		api,
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-scheduler"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-path", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}}, Provisioner: "rancher.io/local-path"},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"}, Data: map[string]string{"config.conf": "mode: iptables\n"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}, Status: appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1}},
	)
	c.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.37.2"}
	hf := explain.HostFacts{ControlPlane: "n1", Endpoint: "https://10.0.0.5:6443", EtcdDataDir: "/var/lib/etcd", EtcdSize: "5.0 MiB", CRISocket: "unix:///run/containerd/containerd.sock", CNIConfig: "/etc/cni/net.d/10-kforge-bridge.conflist"}
	for _, lang := range []string{"en", "zh"} {
		p, _ := messages.New(lang)
		m, err := explain.Architecture(context.Background(), c, hf, p)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, part := range m.Parts {
			keys = append(keys, part.Key)
		}
		if got := strings.Join(keys, " "); got != "etcd apiserver scheduler controller-manager kubelet runtime cni storage proxy dns" {
			t.Fatalf("parts %s", got)
		}
		var out bytes.Buffer
		explain.PrintMap(&out, m, p)
		s := out.String()
		for _, want := range []string{"/var/lib/etcd", "5.0 MiB", "https://10.0.0.5:6443", "Node,RBAC", "https://127.0.0.1:2379", "n1", "v1.37.2, Ready",
			"unix:///run/containerd/containerd.sock", "containerd://2.4.2", "10-kforge-bridge.conflist", "10.244.0.0/24",
			"rancher.io/local-path (default)", "iptables", "10.96.0.1:443", "10.96.0.10", "1/1"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s map lacks %q:\n%s", lang, want, s)
			}
		}
		if strings.Contains(s, "explain.") {
			t.Errorf("%s: a message id shows:\n%s", lang, s)
		}
		if lang == "zh" && !strings.Contains(s, "唯一的状态存储") {
			t.Errorf("zh map is not Chinese:\n%s", s)
		}
		if lang == "en" && !strings.Contains(s, "client certificates (x509); ServiceAccount tokens; bootstrap tokens") {
			t.Errorf("authentication modes:\n%s", s)
		}
	}
}
