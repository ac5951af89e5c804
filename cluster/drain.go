package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/reporter"
)

// DrainTimeout bounds how long a drain waits for evicted pods to go.
const DrainTimeout = 2 * time.Minute

// DrainAndDelete cordons the node, evicts its pods (not DaemonSet pods and
// not static pods, as `kubectl drain --ignore-daemonsets` does), waits for
// them to go, and deletes the Node. A missing node is not an error.
func DrainAndDelete(ctx context.Context, c *kube.Client, name string, out *reporter.Reporter) error {
	ctx, cancel := context.WithTimeout(ctx, DrainTimeout)
	defer cancel()
	nodes := c.Kube.CoreV1().Nodes()
	_, err := nodes.Patch(ctx, name, types.StrategicMergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		out.Infof("  node %s is not in the cluster", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("cordon node %s: %w", name, err)
	}
	evict := func() (int, error) {
		pods, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
		if err != nil {
			return 0, err
		}
		left := 0
		for _, p := range pods.Items {
			if daemonOrStatic(p) || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			left++
			if p.DeletionTimestamp != nil {
				continue
			}
			err := c.Kube.PolicyV1().Evictions(p.Namespace).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsTooManyRequests(err) {
				return left, fmt.Errorf("evict %s/%s: %w", p.Namespace, p.Name, err)
			}
		}
		return left, nil
	}
	for {
		left, err := evict()
		if err != nil {
			return err
		}
		if left == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain node %s: %d pod(s) still there after %s (a PodDisruptionBudget may block them)", name, left, DrainTimeout)
		case <-time.After(500 * time.Millisecond):
		}
	}
	if err := nodes.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	out.Infof("  drained and deleted node %s", name)
	return nil
}

func daemonOrStatic(p corev1.Pod) bool {
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return true
	}
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}
