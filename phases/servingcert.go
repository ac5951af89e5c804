package phases

import (
	"context"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kforge.dev/kforge/approver"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// ServingCertTimeout bounds the wait for the kubelet's serving
// certificate: the approver's pod starting, its approval and the
// controller manager's signature.
const ServingCertTimeout = 3 * time.Minute

// waitServingCert waits until the kubelet on this host has its serving
// certificate from the cluster CA (layout.KubeletServingCert), so that
// `kubectl logs` and `kubectl exec` work once the command returns: the API
// server verifies the kubelet with the cluster CA. c may list CSRs (the
// admin, or a bootstrap token); a timeout says what became of the node's
// newest serving request.
func (d *Data) waitServingCert(ctx context.Context, c kubernetes.Interface) error {
	start := time.Now()
	err := poll(ctx, "the kubelet's serving certificate", ServingCertTimeout, func(ctx context.Context) (bool, string) {
		ok, err := host.Exists(ctx, d.Host, layout.KubeletServingCert)
		if err != nil {
			return false, err.Error()
		}
		if ok {
			return true, ""
		}
		return false, d.servingCSRState(ctx, c)
	})
	if err != nil {
		return d.diagnose(ctx, err, "kubelet")
	}
	d.Out.Logf("kubelet on %s has its serving certificate after %s", d.Host.Name(), time.Since(start).Round(time.Millisecond))
	return nil
}

// servingCSRState describes the newest kubelet-serving request of this
// node, saying which part of the cluster it waits for.
func (d *Data) servingCSRState(ctx context.Context, c kubernetes.Interface) string {
	user := approver.NodeUserPrefix + d.NodeName
	list, err := c.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("no %s yet, and the CSRs cannot be listed (%v)", layout.KubeletServingCert, err)
	}
	var mine []certificatesv1.CertificateSigningRequest
	for _, csr := range list.Items {
		if csr.Spec.Username == user && csr.Spec.SignerName == certificatesv1.KubeletServingSignerName {
			mine = append(mine, csr)
		}
	}
	if len(mine) == 0 {
		return "no kubelet-serving CSR from " + user + " yet: the kubelet sends one once its Node has addresses (see its log)"
	}
	csr := newest(mine)
	denied, approved := csrConditions(csr)
	switch {
	case denied != "":
		return denied
	case !approved:
		return fmt.Sprintf("CSR %s is pending: kforge's approver has not decided it (kubectl -n kube-system logs deploy/kforge-csr-approver)", csr.Name)
	case len(csr.Status.Certificate) == 0:
		return fmt.Sprintf("CSR %s is approved but not signed: is the controller manager running?", csr.Name)
	}
	return fmt.Sprintf("CSR %s is signed, but the kubelet has not written %s", csr.Name, layout.KubeletServingCert)
}
