package kube_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"kforge.dev/kforge/kube"
)

func TestNodeInitialized(t *testing.T) {
	cond := func(status corev1.ConditionStatus, msg string) *corev1.Node {
		return &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, Message: msg}}}}
	}
	for _, tc := range []struct {
		node *corev1.Node
		want bool
	}{
		{&corev1.Node{}, true},
		{cond(corev1.ConditionTrue, "kubelet is posting ready status"), true},
		{cond(corev1.ConditionFalse, "container runtime network not ready: cni plugin not initialized"), true},
		{cond(corev1.ConditionFalse, "[container runtime network not ready, CSINode is not yet initialized]"), false},
		{cond(corev1.ConditionFalse, "failed to initialize CSINode: error updating CSINode annotation"), false},
	} {
		if got, why := kube.NodeInitialized(tc.node); got != tc.want {
			t.Errorf("NodeInitialized(%+v) = %v (%s), want %v", tc.node.Status.Conditions, got, why, tc.want)
		}
	}
}
