package phases

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"kforge.dev/kforge/config"
)

// Annotations on a Node that record the labels and taints kforge set from
// the cluster file, so that a re-run removes those the file no longer
// lists and leaves everyone else's alone.
const (
	ManagedLabelsAnnotation = "kforge.dev/labels"
	ManagedTaintsAnnotation = "kforge.dev/taints"
)

// SetNodeMetadata makes n carry the host's labels and taints from the
// cluster file (taints as KEY[=VALUE]:EFFECT), removes the ones kforge set
// before that the file no longer lists, and records what it manages. It
// reports whether n changed.
func SetNodeMetadata(n *corev1.Node, labels map[string]string, taintSpecs []string) (bool, error) {
	var taints []corev1.Taint
	for _, s := range taintSpecs {
		t, err := config.ParseTaint(s)
		if err != nil {
			return false, fmt.Errorf("taint %q: %w", s, err)
		}
		taints = append(taints, t)
	}
	before := n.DeepCopy()
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	for _, k := range split(n.Annotations[ManagedLabelsAnnotation]) {
		if _, keep := labels[k]; !keep {
			delete(n.Labels, k)
		}
	}
	keys := make([]string, 0, len(labels))
	for k, v := range labels {
		n.Labels[k] = v
		keys = append(keys, k)
	}
	sort.Strings(keys)

	id := func(t corev1.Taint) string { return t.Key + ":" + string(t.Effect) }
	var want []string
	for _, t := range taints {
		want = append(want, id(t))
	}
	old := split(n.Annotations[ManagedTaintsAnnotation])
	var kept []corev1.Taint
	for _, t := range n.Spec.Taints {
		if slices.Contains(want, id(t)) || slices.Contains(old, id(t)) {
			continue // replaced below, or no longer listed
		}
		kept = append(kept, t)
	}
	n.Spec.Taints = append(kept, taints...)
	sort.Strings(want)

	setOrDelete(n.Annotations, ManagedLabelsAnnotation, strings.Join(keys, ","))
	setOrDelete(n.Annotations, ManagedTaintsAnnotation, strings.Join(want, ","))
	changed := !equalStrings(before.Labels, n.Labels) || !equalStrings(before.Annotations, n.Annotations) || !sameTaints(before.Spec.Taints, n.Spec.Taints)
	return changed, nil
}

// ApplyNodeMetadata sets the host's labels and taints on its Node
// (SetNodeMetadata), retrying on conflicts.
func ApplyNodeMetadata(ctx context.Context, c kubernetes.Interface, name string, h config.Host) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		changed, err := SetNodeMetadata(n, h.Labels, h.Taints)
		if err != nil || !changed {
			return err
		}
		_, err = c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{FieldManager: "kforge"})
		return err
	})
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func setOrDelete(m map[string]string, k, v string) {
	if v == "" {
		delete(m, k)
	} else {
		m[k] = v
	}
}

func equalStrings(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameTaints(a, b []corev1.Taint) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.Taint) bool {
		return x.Key == y.Key && x.Value == y.Value && x.Effect == y.Effect
	})
}
