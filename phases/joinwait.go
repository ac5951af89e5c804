package phases

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
)

// How long a join waits for the kubelet's TLS bootstrap, and how often it
// looks.
const (
	TLSBootstrapTimeout = 2 * time.Minute
	joinPollEvery       = 500 * time.Millisecond
)

// joinWait waits until the kubelet has its client certificate (it wrote
// kubelet.conf once its CSR was approved and signed) and then until the
// Node has registered and is Ready, asking the API server with the
// bootstrap token every 500 ms, then for the kubelet's serving certificate
// (waitServingCert). Then it removes the bootstrap kubeconfig,
// as kubeadm does: the kubelet renews its certificate with its own. A
// timeout says what was last seen — the state of the kubelet's CSR, or the
// node's Ready condition — with the last lines of the kubelet's log.
func joinWait(ctx context.Context, d *Data) error {
	if err := d.joinCluster(ctx); err != nil {
		return err
	}
	c, err := d.tokenClient(d.Results.Discovered)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := d.waitTLSBootstrap(ctx, c, TLSBootstrapTimeout); err != nil {
		return d.diagnose(ctx, err, "kubelet")
	}
	d.Out.Logf("kubelet on %s has its client certificate after %s", d.Host.Name(), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := d.waitNodeReadyAsToken(ctx, c, NodeReadyWaitTimeout); err != nil {
		return d.diagnose(ctx, err, "kubelet")
	}
	d.Out.Logf("node %s Ready after %s", d.NodeName, time.Since(start).Round(time.Millisecond))
	if err := d.waitServingCert(ctx, c, false); err != nil {
		return err
	}
	return d.Host.Remove(ctx, layout.BootstrapKubeletConf)
}

// poll calls f every joinPollEvery until it reports done or timeout
// passes; the *kube.WaitError then carries the last thing f saw.
func poll(ctx context.Context, what string, timeout time.Duration, f func(context.Context) (bool, string)) error {
	return pollEvery(ctx, what, joinPollEvery, timeout, f)
}

// pollEvery is poll asking every interval.
func pollEvery(ctx context.Context, what string, every, timeout time.Duration, f func(context.Context) (bool, string)) error {
	start := time.Now()
	last := ""
	err := wait.PollUntilContextTimeout(ctx, every, timeout, true, func(ctx context.Context) (bool, error) {
		done, seen := f(ctx)
		// A call cut short by the deadline (or refused by the client's
		// rate limiter because it would pass the deadline) says less than
		// the one before.
		cut := ctx.Err() != nil || strings.Contains(seen, "would exceed context deadline")
		if !cut || last == "" {
			last = seen
		}
		return done, nil
	})
	if err != nil {
		return &kube.WaitError{What: what, Waited: time.Since(start), Last: last, Err: err}
	}
	return nil
}

func (d *Data) waitTLSBootstrap(ctx context.Context, c kubernetes.Interface, timeout time.Duration) error {
	return poll(ctx, "the kubelet's client certificate (TLS bootstrap)", timeout, func(ctx context.Context) (bool, string) {
		ok, err := host.Exists(ctx, d.Host, layout.KubeletConf)
		if err != nil {
			return false, err.Error()
		}
		if ok {
			return true, ""
		}
		return false, d.csrState(ctx, c)
	})
}

// csrState describes the newest CSR the token sent (bootstrap tokens may
// list CSRs), saying which part of the control plane it waits for.
func (d *Data) csrState(ctx context.Context, c kubernetes.Interface) string {
	user := d.Results.Discovered.User
	list, err := c.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("no kubelet.conf yet, and the token may not list CSRs (%v)", err)
	}
	var mine []certificatesv1.CertificateSigningRequest
	for _, csr := range list.Items {
		if csr.Spec.Username == user {
			mine = append(mine, csr)
		}
	}
	if len(mine) == 0 {
		return "no CSR from " + user + " yet: the kubelet has not sent one (see its log)"
	}
	csr := newest(mine)
	denied, approved := csrConditions(csr)
	switch {
	case denied != "":
		return denied
	case !approved:
		return fmt.Sprintf("CSR %s is pending: the controller manager has not approved it (its csrapproving controller approves a bootstrap token's CSR when the token's group has the ClusterRoleBinding kubeadm:node-autoapprove-bootstrap)", csr.Name)
	case len(csr.Status.Certificate) == 0:
		return fmt.Sprintf("CSR %s is approved but not signed: is the controller manager's csrsigning controller running with --cluster-signing-cert-file?", csr.Name)
	}
	return fmt.Sprintf("CSR %s is signed, but the kubelet has not written %s", csr.Name, layout.KubeletConf)
}

// waitNodeReadyAsToken polls the Node with the bootstrap token, which may
// get nodes (kubeadm:get-nodes) but not watch them.
func (d *Data) waitNodeReadyAsToken(ctx context.Context, c kubernetes.Interface, timeout time.Duration) error {
	return poll(ctx, "node "+d.NodeName, timeout, func(ctx context.Context) (bool, string) {
		n, err := c.CoreV1().Nodes().Get(ctx, d.NodeName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return false, "the node has not registered (no Node object yet)"
		case err != nil:
			return false, err.Error()
		}
		d.Results.Registered = true
		ready, why := kube.NodeReady(n)
		return ready, why
	})
}

// newest is the most recent of a node's requests.
func newest(list []certificatesv1.CertificateSigningRequest) certificatesv1.CertificateSigningRequest {
	sort.Slice(list, func(i, j int) bool { return list[i].CreationTimestamp.Before(&list[j].CreationTimestamp) })
	return list[len(list)-1]
}

// csrConditions says whether csr was denied or failed (how, for a
// message) and whether it was approved.
func csrConditions(csr certificatesv1.CertificateSigningRequest) (denied string, approved bool) {
	for _, cond := range csr.Status.Conditions {
		switch cond.Type {
		case certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			return fmt.Sprintf("CSR %s is %s (%s: %s)", csr.Name, cond.Type, cond.Reason, cond.Message), false
		case certificatesv1.CertificateApproved:
			approved = true
		}
	}
	return "", approved
}
