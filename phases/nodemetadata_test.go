package phases

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSetNodeMetadata: the file's labels and taints are set; on a later
// run with fewer, kforge removes only those it set, never another's; a run
// with nothing new changes nothing.
func TestSetNodeMetadata(t *testing.T) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "w1", Labels: map[string]string{"theirs": "x"}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "theirs", Effect: corev1.TaintEffectNoExecute}}},
	}
	changed, err := SetNodeMetadata(n, map[string]string{"disk": "ssd", "zone": "a"}, []string{"dedicated=gpu:NoSchedule", "spot:PreferNoSchedule"})
	if err != nil || !changed {
		t.Fatalf("first: %v %v", changed, err)
	}
	if n.Labels["disk"] != "ssd" || n.Labels["zone"] != "a" || n.Labels["theirs"] != "x" || len(n.Spec.Taints) != 3 {
		t.Fatalf("after the first run: labels %v taints %v", n.Labels, n.Spec.Taints)
	}
	if n.Annotations[ManagedLabelsAnnotation] != "disk,zone" || n.Annotations[ManagedTaintsAnnotation] != "dedicated:NoSchedule,spot:PreferNoSchedule" {
		t.Errorf("annotations %v", n.Annotations)
	}
	if changed, _ := SetNodeMetadata(n, map[string]string{"disk": "ssd", "zone": "a"}, []string{"dedicated=gpu:NoSchedule", "spot:PreferNoSchedule"}); changed {
		t.Error("the same file again changed the node")
	}
	changed, err = SetNodeMetadata(n, map[string]string{"disk": "nvme"}, []string{"dedicated=ml:NoSchedule"})
	if err != nil || !changed {
		t.Fatalf("second: %v %v", changed, err)
	}
	if _, ok := n.Labels["zone"]; ok || n.Labels["disk"] != "nvme" || n.Labels["theirs"] != "x" {
		t.Errorf("after the second run: labels %v", n.Labels)
	}
	want := []corev1.Taint{{Key: "theirs", Effect: corev1.TaintEffectNoExecute}, {Key: "dedicated", Value: "ml", Effect: corev1.TaintEffectNoSchedule}}
	if !sameTaints(n.Spec.Taints, want) {
		t.Errorf("after the second run: taints %v, want %v", n.Spec.Taints, want)
	}
	if _, err := SetNodeMetadata(n, nil, []string{"bad"}); err == nil {
		t.Error("a malformed taint was accepted")
	}
	if changed, _ := SetNodeMetadata(n, nil, nil); !changed || n.Labels["theirs"] != "x" || len(n.Spec.Taints) != 1 || n.Annotations[ManagedLabelsAnnotation] != "" {
		t.Errorf("dropping everything: labels %v taints %v annotations %v", n.Labels, n.Spec.Taints, n.Annotations)
	}
}
