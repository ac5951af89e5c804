package doctor

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Cluster runs the checks that need the API: kubelets that stopped
// reporting, nodes under disk pressure, pods waiting for an image no node
// has, and cluster DNS without a ready server.
func Cluster(ctx context.Context, c kubernetes.Interface) ([]Finding, error) {
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("doctor: list nodes: %w", err)
	}
	var fs []Finding
	have := map[string]bool{}
	for _, n := range nodes.Items {
		for _, img := range n.Status.Images {
			for _, name := range img.Names {
				have[name] = true
			}
		}
		for _, cond := range n.Status.Conditions {
			switch {
			case cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionUnknown:
				fs = append(fs, finding(CheckAPIReach, "node "+n.Name, "api-reach", "",
					"Since", cond.LastHeartbeatTime.UTC().Format("2006-01-02 15:04:05"), "Message", cond.Message, "Node", n.Name))
			case cond.Type == corev1.NodeDiskPressure && cond.Status == corev1.ConditionTrue:
				fs = append(fs, finding(CheckDisk, "node "+n.Name, "disk-pressure", "", "Message", cond.Message, "Node", n.Name))
			}
		}
	}
	pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("doctor: list pods: %w", err)
	}
	for _, p := range pods.Items {
		for _, s := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			w := s.State.Waiting
			if w == nil || (w.Reason != "ImagePullBackOff" && w.Reason != "ErrImagePull" && w.Reason != "ErrImageNeverPull") {
				continue
			}
			where := "pod " + p.Namespace + "/" + p.Name
			if have[s.Image] || have[normalize(s.Image)] {
				fs = append(fs, finding(CheckImages, where, "image-elsewhere", "", "Container", s.Name, "Image", s.Image, "Node", p.Spec.NodeName, "Reason", w.Reason))
				continue
			}
			fs = append(fs, finding(CheckImages, where, "image-missing", "", "Container", s.Name, "Image", s.Image, "Reason", w.Reason))
		}
	}
	slices, err := c.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kube-dns"})
	if err != nil {
		return nil, fmt.Errorf("doctor: kube-dns endpoints: %w", err)
	}
	ready := 0
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ready++
			}
		}
	}
	if ready == 0 {
		fs = append(fs, finding(CheckDNS, "service kube-system/kube-dns", "dns", ""))
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Check < fs[j].Check })
	return fs, nil
}

// normalize writes an image reference as the kubelet reports node images:
// docker.io/library/ for a bare name.
func normalize(ref string) string {
	if !strings.Contains(ref, "/") {
		return "docker.io/library/" + ref
	}
	if first := ref[:strings.Index(ref, "/")]; !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + ref
	}
	return ref
}
