package kube

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// MissingMirrorPods returns the static pods of node, named by component
// (etcd, kube-apiserver, ...), whose mirror pod is not in kube-system: the
// kubelet has not published them to the API server.
func (c *Client) MissingMirrorPods(ctx context.Context, node string, components []string) ([]string, error) {
	pods, err := c.Kube.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return components, fmt.Errorf("pods of node %s on %s: %w", node, c.Server(), err)
	}
	var missing []string
	for _, comp := range components {
		if !slices.ContainsFunc(pods.Items, func(p corev1.Pod) bool {
			_, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]
			return mirror && p.Name == comp+"-"+node
		}) {
			missing = append(missing, comp)
		}
	}
	return missing, nil
}

// WaitMirrorPods polls every 200 ms until node's static pods of
// components all have mirror pods or timeout passes, and returns those
// still missing. When the API server could not be asked at all until the
// end, the error says why.
func (c *Client) WaitMirrorPods(ctx context.Context, node string, components []string, timeout time.Duration) ([]string, error) {
	missing := components
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		m, err := c.MissingMirrorPods(ctx, node, components)
		if err != nil {
			// A list cut short by the poll's own deadline says nothing.
			if ctx.Err() == nil {
				last = err
			}
			return false, nil
		}
		missing, last = m, nil
		return len(m) == 0, nil
	})
	switch {
	case ctx.Err() != nil:
		return missing, ctx.Err()
	case err != nil && last != nil:
		return missing, last
	}
	return missing, nil
}
