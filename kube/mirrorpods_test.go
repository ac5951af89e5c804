package kube

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
)

func staticPod(name, node string, mirror bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem}, Spec: corev1.PodSpec{NodeName: node}}
	if mirror {
		p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
	}
	return p
}

func TestMirrorPods(t *testing.T) {
	ctx := context.Background()
	// The fake clientset ignores field selectors: pods of other nodes are
	// told apart by their names.
	cs := fake.NewClientset(staticPod("etcd-n1", "n1", true), staticPod("kube-apiserver-n1", "n1", false), staticPod("kube-scheduler-n2", "n2", true))
	c := &Client{Config: &rest.Config{Host: "https://10.0.0.5:6443"}, Kube: cs}
	components := []string{"etcd", "kube-apiserver", "kube-scheduler"}
	missing, err := c.MissingMirrorPods(ctx, "n1", components)
	if err != nil || !reflect.DeepEqual(missing, []string{"kube-apiserver", "kube-scheduler"}) {
		t.Errorf("missing %v, %v; want the API server (a pod, not a mirror pod) and the scheduler (another node's)", missing, err)
	}
	start := time.Now()
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = cs.CoreV1().Pods(metav1.NamespaceSystem).Create(ctx, staticPod("kube-scheduler-n1", "n1", true), metav1.CreateOptions{})
	}()
	missing, err = c.WaitMirrorPods(ctx, "n1", []string{"etcd", "kube-scheduler"}, 10*time.Second)
	if err != nil || len(missing) != 0 || time.Since(start) > 5*time.Second {
		t.Errorf("WaitMirrorPods: %v %v after %s", missing, err, time.Since(start))
	}
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("forbidden")
	})
	missing, err = c.WaitMirrorPods(ctx, "n1", []string{"etcd"}, 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "forbidden") || len(missing) != 1 {
		t.Errorf("an API server that cannot be asked: %v %v, want its error", missing, err)
	}
}
