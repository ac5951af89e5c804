package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/expiration"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/reporter"
)

// recordRenewal records an Event on the control plane's Node (found from
// the kubelet's client certificate on h), so that `kubectl get events` and
// `kubectl describe node` show renewals, automatic ones included. It is
// best effort: a failure is a warning, never the command's error.
func recordRenewal(ctx context.Context, h host.Host, out *reporter.Reporter, kind, reason, msg string) {
	if err := createNodeEvent(ctx, h, kind, reason, msg); err != nil {
		out.Infof("  ! could not record the %s Event: %v", reason, err)
	}
}

func createNodeEvent(ctx context.Context, h host.Host, kind, reason, msg string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pemData, err := h.ReadFile(ctx, expiration.KubeletClientCert)
	if err != nil {
		return err
	}
	cert, err := certs.ParseCert(pemData)
	if err != nil {
		return fmt.Errorf("%s: %w", expiration.KubeletClientCert, err)
	}
	nodeName, ok := strings.CutPrefix(cert.Subject.CommonName, "system:node:")
	if !ok {
		return fmt.Errorf("%s is not a node's certificate (%s)", expiration.KubeletClientCert, cert.Subject.CommonName)
	}
	c, err := kube.FromHost(ctx, h, layout.AdminConf, "")
	if err != nil {
		return err
	}
	node, err := c.Kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	_, err = c.Kube.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: nodeName + ".kforge-certs-"},
		InvolvedObject:      corev1.ObjectReference{Kind: "Node", Name: nodeName, UID: node.UID, APIVersion: "v1"},
		Reason:              reason,
		Message:             msg,
		Type:                kind,
		Source:              corev1.EventSource{Component: "kforge", Host: nodeName},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: "kforge.dev/certs-renew",
		ReportingInstance:   nodeName,
	}, metav1.CreateOptions{})
	return err
}
