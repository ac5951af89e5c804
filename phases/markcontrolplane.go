package phases

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// Labels and taint of a control-plane node, as kubeadm's.
const (
	ControlPlaneLabel          = "node-role.kubernetes.io/control-plane"
	ExcludeFromExternalLBLabel = "node.kubernetes.io/exclude-from-external-load-balancers"
)

// ControlPlaneTaint keeps ordinary pods off control-plane nodes.
var ControlPlaneTaint = corev1.Taint{Key: ControlPlaneLabel, Effect: corev1.TaintEffectNoSchedule}

// markControlPlane labels this node node-role.kubernetes.io/control-plane
// and node.kubernetes.io/exclude-from-external-load-balancers, and taints
// it node-role.kubernetes.io/control-plane:NoSchedule — or, when the
// cluster is to run workloads on it (kforge up --local), removes that
// taint. The cluster file's labels and taints for the host are set too
// (SetNodeMetadata). Other labels and taints are left alone. It changes
// nothing on the host.
func markControlPlane(ctx context.Context, d *Data) error {
	c, err := d.adminClient(ctx, "")
	if err != nil {
		return err
	}
	nodes := c.Kube.CoreV1().Nodes()
	changed := false
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, d.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("node %s has not registered: is the kubelet running? (`kforge init phase wait` waits for it)", d.NodeName)
		}
		if err != nil {
			return err
		}
		marked := markNode(n, !d.Schedulable)
		own, err := SetNodeMetadata(n, d.Node.Labels, d.Node.Taints)
		if err != nil {
			return err
		}
		if !marked && !own {
			return nil
		}
		changed = true
		_, err = nodes.Update(ctx, n, metav1.UpdateOptions{FieldManager: "kforge"})
		return err
	})
	if err != nil {
		return fmt.Errorf("mark node %s: %w", d.NodeName, err)
	}
	how := "tainted " + ControlPlaneTaint.ToString()
	if d.Schedulable {
		how = "schedulable"
	}
	if changed {
		d.Out.Logf("node %s: labelled control-plane, %s", d.NodeName, how)
	}
	return nil
}

// markNode sets the control-plane labels on n and adds or removes the
// control-plane taint; it reports whether n changed.
func markNode(n *corev1.Node, taint bool) bool {
	changed := false
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	for _, l := range []string{ControlPlaneLabel, ExcludeFromExternalLBLabel} {
		if v, ok := n.Labels[l]; !ok || v != "" {
			n.Labels[l] = ""
			changed = true
		}
	}
	var taints []corev1.Taint
	has := false
	for _, t := range n.Spec.Taints {
		if t.MatchTaint(&ControlPlaneTaint) {
			if !taint {
				changed = true
				continue
			}
			has = true
		}
		taints = append(taints, t)
	}
	if taint && !has {
		taints = append(taints, ControlPlaneTaint)
		changed = true
	}
	n.Spec.Taints = taints
	return changed
}
