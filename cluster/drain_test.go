package cluster

import (
	"bytes"
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/reporter"
)

// fakeCluster is a fake clientset that, as an API server would, lists pods
// by spec.nodeName and offers evictions; an eviction deletes the pod at
// once (the fake clientset alone does neither). It records the pods
// evicted.
func fakeCluster(t *testing.T, objs ...runtime.Object) (*kube.Client, *fake.Clientset, *[]string) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: "v1",
		APIResources: []metav1.APIResource{{Name: "pods/eviction", Kind: "Eviction", Group: "policy", Version: "v1"}},
	}}
	podsGVR := corev1.SchemeGroupVersion.WithResource("pods")
	cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		all, err := cs.Tracker().List(podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), a.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		sel := a.(k8stesting.ListAction).GetListRestrictions().Fields
		list := &corev1.PodList{}
		for _, p := range all.(*corev1.PodList).Items {
			if sel.Matches(fields.Set{"spec.nodeName": p.Spec.NodeName}) {
				list.Items = append(list.Items, p)
			}
		}
		return true, list, nil
	})
	var evicted []string
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		name := a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName()
		evicted = append(evicted, a.GetNamespace()+"/"+name)
		return true, nil, cs.Tracker().Delete(podsGVR, a.GetNamespace(), name)
	})
	return &kube.Client{Config: &rest.Config{Host: "https://10.0.0.5:6443"}, Kube: cs}, cs, &evicted
}

func pod(name, node, ownerKind string, mod func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if ownerKind != "" {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: ownerKind, Name: name + "-owner", Controller: &yes}}
	}
	if mod != nil {
		mod(p)
	}
	return p
}

// TestDrainAndDelete drains w1 as kubectl drain --ignore-daemonsets
// --delete-emptydir-data: it is cordoned, its ReplicaSet pods (one with an
// emptyDir) are evicted, its DaemonSet and static pods and w2's pod stay,
// and its Node is deleted.
func TestDrainAndDelete(t *testing.T) {
	c, cs, evicted := fakeCluster(t,
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w2"}},
		pod("web", "w1", "ReplicaSet", nil),
		pod("cache", "w1", "ReplicaSet", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}),
		pod("kube-proxy-w1", "w1", "DaemonSet", nil),
		pod("static-w1", "w1", "", func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} }),
		pod("web-on-w2", "w2", "ReplicaSet", nil),
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy-w1-owner", Namespace: "default"}},
	)
	var out, log bytes.Buffer
	var cordoned bool
	cs.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		cordoned = a.(k8stesting.PatchAction).GetName() == "w1" && strings.Contains(string(a.(k8stesting.PatchAction).GetPatch()), `"unschedulable":true`)
		return false, nil, nil
	})
	if err := DrainAndDelete(context.Background(), c, "w1", reporter.New(&out, &log, true)); err != nil {
		t.Fatal(err)
	}
	if !cordoned {
		t.Error("w1 was not cordoned")
	}
	if got := strings.Join(*evicted, " "); got != "default/cache default/web" && got != "default/web default/cache" {
		t.Errorf("evicted %q, want default/web and default/cache", got)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node w1 is still there: %v", err)
	}
	if _, err := cs.CoreV1().Nodes().Get(ctx, "w2", metav1.GetOptions{}); err != nil {
		t.Errorf("node w2: %v", err)
	}
	for _, kept := range []string{"kube-proxy-w1", "static-w1", "web-on-w2"} {
		if _, err := cs.CoreV1().Pods("default").Get(ctx, kept, metav1.GetOptions{}); err != nil {
			t.Errorf("pod %s: %v", kept, err)
		}
	}
	if !strings.Contains(out.String(), "drained and deleted node w1") || !strings.Contains(log.String(), "evicting pod default/web") {
		t.Errorf("output:\n%s\nlog:\n%s", out.String(), log.String())
	}
}

// TestDrainAndDeleteRemovesAPodWithoutController: the node is about to be
// reset, so a pod no controller manages goes too (kubectl drain --force).
func TestDrainAndDeleteRemovesAPodWithoutController(t *testing.T) {
	c, cs, evicted := fakeCluster(t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}}, pod("debug", "w1", "", nil))
	if err := DrainAndDelete(context.Background(), c, "w1", reporter.Discard()); err != nil {
		t.Fatal(err)
	}
	if len(*evicted) != 1 || (*evicted)[0] != "default/debug" {
		t.Errorf("evicted %v, want default/debug", *evicted)
	}
	if _, err := cs.CoreV1().Nodes().Get(context.Background(), "w1", metav1.GetOptions{}); err == nil {
		t.Error("node w1 is still there")
	}
}

func TestDrainAndDeleteMissingNode(t *testing.T) {
	c, _, _ := fakeCluster(t)
	var out bytes.Buffer
	if err := DrainAndDelete(context.Background(), c, "gone", reporter.New(&out, nil, true)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "node gone is not in the cluster") {
		t.Errorf("output %q", out.String())
	}
}
