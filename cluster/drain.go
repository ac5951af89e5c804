package cluster

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubectl/pkg/drain"

	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/reporter"
)

// DrainTimeout bounds how long a drain waits for evicted pods to go.
const DrainTimeout = 2 * time.Minute

// evictRetryDelay is how long the drain waits before asking again for an
// eviction a PodDisruptionBudget refused, as kubectl drain does.
const evictRetryDelay = 5 * time.Second

// DrainAndDelete cordons the node and drains it as `kubectl drain
// --ignore-daemonsets --delete-emptydir-data` does (k8s.io/kubectl's
// drain: DaemonSet and static pods stay, the others are evicted, which
// respects PodDisruptionBudgets, and get their own grace period), waits up
// to DrainTimeout for them to go, and deletes the Node. What the drain
// does goes to the reporter's log. A missing node is not an error.
func DrainAndDelete(ctx context.Context, c *kube.Client, name string, out *reporter.Reporter) error {
	ctx, cancel := context.WithTimeout(ctx, DrainTimeout)
	defer cancel()
	nodes := c.Kube.CoreV1().Nodes()
	node, err := nodes.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		out.Infof("  node %s is not in the cluster", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %s on %s: %w", name, c.Server(), err)
	}
	d := &drain.Helper{
		Ctx:                 ctx,
		Client:              c.Kube,
		IgnoreAllDaemonSets: true,
		DeleteEmptyDirData:  true,
		// The node is about to be reset, which ends every pod on it: pods
		// no controller manages go too, as with kubectl drain --force.
		Force:                true,
		GracePeriodSeconds:   -1, // each pod's terminationGracePeriodSeconds
		Timeout:              DrainTimeout,
		EvictErrorRetryDelay: evictRetryDelay,
		Out:                  out.Log(),
		ErrOut:               out.Log(),
	}
	if err := drain.RunCordonOrUncordon(d, node, true); err != nil {
		return fmt.Errorf("cordon node %s: %w", name, err)
	}
	if err := drain.RunNodeDrain(d, name); err != nil {
		return fmt.Errorf("drain node %s: %w; kforge drains as `kubectl drain %s --ignore-daemonsets --delete-emptydir-data --force` does: "+
			"wait for or relax the PodDisruptionBudget that holds a pod, then run the same command again", name, err, name)
	}
	if err := nodes.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	out.Infof("  drained and deleted node %s", name)
	return nil
}

// drainForUpgrade cordons the node and drains it as `kubectl drain
// --ignore-daemonsets --delete-emptydir-data` does, without --force: a
// pod no controller manages would not come back, so it stops the drain.
// Evictions respect PodDisruptionBudgets and are asked again until
// timeout.
func drainForUpgrade(ctx context.Context, c *kube.Client, name string, timeout time.Duration, out *reporter.Reporter) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	node, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s on %s: %w", name, c.Server(), err)
	}
	d := &drain.Helper{
		Ctx: ctx, Client: c.Kube, IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
		GracePeriodSeconds: -1, Timeout: timeout, EvictErrorRetryDelay: evictRetryDelay,
		Out: out.Log(), ErrOut: out.Log(),
	}
	if err := drain.RunCordonOrUncordon(d, node, true); err != nil {
		return fmt.Errorf("cordon node %s: %w", name, err)
	}
	if err := drain.RunNodeDrain(d, name); err != nil {
		return fmt.Errorf("drain node %s: %w; kforge drains as `kubectl drain %s --ignore-daemonsets --delete-emptydir-data` does: "+
			"wait for or relax the PodDisruptionBudget that holds a pod (or move a pod no controller manages), then run the same command again", name, err, name)
	}
	return nil
}

// uncordon lets the scheduler use the node again.
func uncordon(ctx context.Context, c *kube.Client, name string) error {
	node, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s on %s: %w", name, c.Server(), err)
	}
	d := &drain.Helper{Ctx: ctx, Client: c.Kube}
	if err := drain.RunCordonOrUncordon(d, node, false); err != nil {
		return fmt.Errorf("uncordon node %s: %w", name, err)
	}
	return nil
}
