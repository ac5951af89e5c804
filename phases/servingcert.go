package phases

import (
	"context"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// servingCertPollEvery is how often the control plane's own wait looks for
// the certificate's file and the node's request (the kubelet writes the
// file within milliseconds of the signature); a joining node asks every
// joinPollEvery, so that hundreds of them do not list the CSRs ten times a
// second each.
const servingCertPollEvery = 100 * time.Millisecond

// waitServingCert waits until the kubelet on this host has its serving
// certificate from the cluster CA (layout.KubeletServingCert), so that
// `kubectl logs` and `kubectl exec` work once the command returns: the API
// server verifies the kubelet with the cluster CA. c may list CSRs (the
// admin, or a bootstrap token); a timeout says what became of the node's
// newest serving request.
//
// With decide (c is the admin's), the node's own pending request is
// decided here as kforge's approver decides it (approver.Review and
// approver.Decide) instead of waiting for the approver's pod to start:
// on a new control plane that pod is scheduled only after the add-ons and
// takes about two seconds more. The approver's pod decides every later
// request; whichever of the two writes first wins, and the other sees the
// request decided.
func (d *Data) waitServingCert(ctx context.Context, c kubernetes.Interface, decide bool) error {
	start := time.Now()
	every := joinPollEvery
	if decide {
		every = servingCertPollEvery
	}
	err := pollEvery(ctx, "the kubelet's serving certificate", every, ServingCertTimeout, func(ctx context.Context) (bool, string) {
		ok, err := host.Exists(ctx, d.Host, layout.KubeletServingCert)
		if err != nil {
			return false, err.Error()
		}
		if ok {
			return true, ""
		}
		csr, state := d.servingCSR(ctx, c)
		if decide && csr != nil && !approver.Decided(csr) {
			state = d.decideServingCSR(ctx, c, csr)
		}
		return false, state
	})
	if err != nil {
		return d.diagnose(ctx, err, "kubelet")
	}
	d.Out.Logf("kubelet on %s has its serving certificate after %s", d.Host.Name(), time.Since(start).Round(time.Millisecond))
	return nil
}

// decideServingCSR approves the node's pending request when
// approver.Review passes it against the node; a request that fails the
// review is left to kforge's approver, which denies it and says why. It
// returns the wait's state.
func (d *Data) decideServingCSR(ctx context.Context, c kubernetes.Interface, csr *certificatesv1.CertificateSigningRequest) string {
	node, err := c.CoreV1().Nodes().Get(ctx, d.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("CSR %s is pending, and node %s cannot be read to review it (%v)", csr.Name, d.NodeName, err)
	}
	if err := approver.Review(csr, node); err != nil {
		return fmt.Sprintf("CSR %s is pending: it fails kforge's review (%v); kforge's approver will deny it (kubectl -n kube-system logs deploy/kforge-csr-approver)", csr.Name, err)
	}
	if _, err := approver.Decide(ctx, c, csr, node, "kforge"); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Sprintf("CSR %s was decided meanwhile", csr.Name)
		}
		return fmt.Sprintf("CSR %s is pending, and approving it failed (%v)", csr.Name, err)
	}
	d.Out.Logf("approved CSR %s, the kubelet serving certificate request of node %s (its SANs are the node's own addresses)", csr.Name, d.NodeName)
	return fmt.Sprintf("CSR %s is approved but not signed: is the controller manager running?", csr.Name)
}

// servingCSR finds the newest kubelet-serving request of this node and
// describes it, saying which part of the cluster it waits for; the
// request is nil when there is none or it cannot be listed.
func (d *Data) servingCSR(ctx context.Context, c kubernetes.Interface) (*certificatesv1.CertificateSigningRequest, string) {
	user := approver.NodeUserPrefix + d.NodeName
	list, err := c.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Sprintf("no %s yet, and the CSRs cannot be listed (%v)", layout.KubeletServingCert, err)
	}
	var mine []certificatesv1.CertificateSigningRequest
	for _, csr := range list.Items {
		if csr.Spec.Username == user && csr.Spec.SignerName == certificatesv1.KubeletServingSignerName {
			mine = append(mine, csr)
		}
	}
	if len(mine) == 0 {
		return nil, "no kubelet-serving CSR from " + user + " yet: the kubelet sends one once its Node has addresses (see its log)"
	}
	csr := newest(mine)
	denied, approved := csrConditions(csr)
	switch {
	case denied != "":
		return &csr, denied
	case !approved:
		return &csr, fmt.Sprintf("CSR %s is pending: kforge's approver has not decided it (kubectl -n kube-system logs deploy/kforge-csr-approver)", csr.Name)
	case len(csr.Status.Certificate) == 0:
		return &csr, fmt.Sprintf("CSR %s is approved but not signed: is the controller manager running?", csr.Name)
	}
	return &csr, fmt.Sprintf("CSR %s is signed, but the kubelet has not written %s", csr.Name, layout.KubeletServingCert)
}
