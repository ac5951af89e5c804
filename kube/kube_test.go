package kube_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kforge.dev/kforge/internal/controlplanetest"
	"kforge.dev/kforge/kube"
)

func TestDecode(t *testing.T) {
	objs, err := kube.Decode([]byte("---\n# nothing\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"b\"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetName() != "a" || objs[1].GetKind() != "Namespace" {
		t.Fatalf("decoded %v", objs)
	}
	if _, err := kube.Decode([]byte("apiVersion: v1\nkind: ConfigMap\n")); err == nil || !strings.Contains(err.Error(), "document 1") {
		t.Errorf("a nameless object: %v", err)
	}
	if _, err := kube.Decode([]byte("a: [\n")); err == nil {
		t.Error("broken YAML decoded")
	}
}

func TestNodeReady(t *testing.T) {
	n := &corev1.Node{}
	if ok, why := kube.NodeReady(n); ok || !strings.Contains(why, "no Ready condition") {
		t.Errorf("no conditions: %v %q", ok, why)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "cni plugin not initialized"}}
	if ok, why := kube.NodeReady(n); ok || why != "Ready=False (KubeletNotReady: cni plugin not initialized)" {
		t.Errorf("not ready: %v %q", ok, why)
	}
}

// TestWaitAPIServerNamesTheLastError waits on a port nobody listens on.
func TestWaitAPIServerNamesTheLastError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := kube.New([]byte("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://"+addr+"\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user: {}\ncurrent-context: c\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.WaitAPIServer(context.Background(), time.Second)
	var we *kube.WaitError
	if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a *WaitError for the deadline, got %v", err)
	}
	for _, s := range []string{"API server https://" + addr + " /readyz", "not ready after 1s", "connection refused"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q lacks %q", err, s)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a 1s wait took %s", d)
	}
}

// TestAgainstARealAPIServer runs the waits and server-side apply against
// the real kube-apiserver with kforge's rendered flags.
func TestAgainstARealAPIServer(t *testing.T) {
	cp := controlplanetest.Start(t, controlplanetest.Options{WithoutControllers: true})
	c := cp.Client(t, "super-admin")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("WaitAPIServer", func(t *testing.T) {
		if err := c.WaitAPIServer(ctx, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("WaitNodeReady", func(t *testing.T) {
		err := c.WaitNodeReady(ctx, "absent", 500*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "has not registered") {
			t.Errorf("an absent node: %v", err)
		}
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
		if _, err := c.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		setReady := func(status corev1.ConditionStatus, reason, msg string) {
			t.Helper()
			n, err := c.Kube.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, Reason: reason, Message: msg, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
			if _, err := c.Kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		setReady(corev1.ConditionFalse, "KubeletNotReady", "container runtime network not ready")
		err = c.WaitNodeReady(ctx, "n1", 500*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "node n1 not ready after") || !strings.Contains(err.Error(), "Ready=False (KubeletNotReady: container runtime network not ready)") {
			t.Errorf("a NotReady node: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- c.WaitNodeReady(ctx, "n1", 30*time.Second) }()
		time.Sleep(300 * time.Millisecond)
		setReady(corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status")
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the watch did not see the node become Ready within 10s")
		}
	})

	t.Run("Apply twice is a no-op", func(t *testing.T) {
		docs := []byte(`apiVersion: v1
kind: Namespace
metadata:
  name: applied
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: one
  namespace: applied
data:
  a: "1"
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: kforge-test
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [get]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: applied
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: example.invalid/web:1
`)
		first, err := c.Apply(ctx, docs)
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != 4 {
			t.Fatalf("applied %v", first)
		}
		for _, a := range first {
			if !a.Changed {
				t.Errorf("first apply of %s reports no change", a)
			}
		}
		cm, err := c.Kube.CoreV1().ConfigMaps("applied").Get(ctx, "one", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if m := cm.ManagedFields; len(m) != 1 || m[0].Manager != kube.FieldManager || m[0].Operation != metav1.ManagedFieldsOperationApply {
			t.Errorf("managed fields %+v, want one Apply by %s", m, kube.FieldManager)
		}
		if cm.Labels[kube.ManagedByLabel] != "kforge" {
			t.Errorf("labels %v lack %s=kforge", cm.Labels, kube.ManagedByLabel)
		}
		second, err := c.Apply(ctx, docs)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range second {
			if a.Changed {
				t.Errorf("second apply changed %s", a)
			}
		}
		changed, err := c.Apply(ctx, []byte(strings.Replace(string(docs), `a: "1"`, `a: "2"`, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if !changed[1].Changed || changed[0].Changed || changed[3].Changed {
			t.Errorf("changing one ConfigMap reported %v", changed)
		}
	})

	t.Run("Apply names what the server refuses", func(t *testing.T) {
		_, err := c.Apply(ctx, []byte("apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n"))
		if err == nil || !strings.Contains(err.Error(), "Gadget g") || !strings.Contains(err.Error(), "does not serve example.com/v1 Gadget") {
			t.Errorf("an unknown kind: %v", err)
		}
		_, err = c.Apply(ctx, []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: applied\nspec:\n  clusterIP: 1.2.3.4\n  ports: [{port: 80}]\n"))
		if err == nil || !strings.Contains(err.Error(), "apply Service applied/s") {
			t.Errorf("an invalid Service: %v", err)
		}
	})
}
