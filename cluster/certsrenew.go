package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/expiration"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/providers/ssh"
	"kforge.dev/kforge/renewal"
	"kforge.dev/kforge/reporter"
)

// RestartTimeout bounds how long a static pod may take to come back
// healthy after a renewal restarted it.
const RestartTimeout = 3 * time.Minute

// CertsRenewOptions are the inputs of `kforge certs renew`.
type CertsRenewOptions struct {
	Connect ConnectOptions
	// ConfigFile renews on each of the cluster file's control planes in
	// turn, over SSH; empty means this machine. Its certs.validity and certs.extraSANs
	// apply.
	ConfigFile string
	// Names are renewal.Names() entries or "all".
	Names []string
	// APIServerExtraSANs are added to the API server's certificate.
	APIServerExtraSANs []string
	// ExpiringWithin, instead of Names, renews the certificates kforge
	// manages that expire within it, and nothing when none does.
	ExpiringWithin time.Duration
	// Validity, when set, is how long the new certificates last instead
	// of the cluster file's certs.validity.
	Validity time.Duration
	Out      *reporter.Reporter
}

// CertsRenew re-issues the named certificates on the control plane from
// the cluster's CAs, then restarts the static pods that read them, one at
// a time, each healthy before the next.
func CertsRenew(ctx context.Context, o CertsRenewOptions) error {
	var names []string
	var err error
	if o.ExpiringWithin == 0 {
		if names, err = renewal.Expand(o.Names); err != nil {
			return err
		}
	} else if len(o.Names) > 0 {
		return fmt.Errorf("name certificates to renew, or pass --expiring-within, not both")
	}
	c, err := LoadConfigOrDefault(o.ConfigFile)
	if err != nil {
		return err
	}
	_, validity, err := c.Certs.Durations()
	if err != nil {
		return err
	}
	if o.Validity > 0 {
		validity = o.Validity
	}
	pool := ssh.NewPool()
	defer pool.Close()
	o.Connect.Pool = pool
	extra := append(append([]string(nil), c.Certs.ExtraSANs...), o.APIServerExtraSANs...)
	// One control plane at a time: with several, the others serve while
	// one restarts its API server and etcd.
	cps := c.ControlPlanes()
	for i, node := range cps {
		if err := renewOn(ctx, node, names, validity, extra, o); err != nil {
			if i > 0 {
				return fmt.Errorf("%w\n(renewed on the %d control plane(s) before it; re-run to finish the others)", err, i)
			}
			return err
		}
	}
	o.Out.Total("kforge certs renew finished")
	return nil
}

// renewOn renews on one control plane and restarts what reads the new
// files there, one component at a time.
func renewOn(ctx context.Context, node config.Host, names []string, validity time.Duration, extraSANs []string, o CertsRenewOptions) error {
	h, err := Connect(ctx, node, o.Connect)
	if err != nil {
		return err
	}
	defer h.Close()
	if o.ExpiringWithin > 0 {
		if names, err = expiringNames(ctx, h, o.ExpiringWithin); err != nil {
			return err
		}
		if len(names) == 0 {
			o.Out.Infof("nothing kforge renews on %s expires within %s", h.Name(), o.ExpiringWithin)
			return nil
		}
	}
	done := o.Out.Step("renew certificates on " + h.Name())
	res, err := renewal.Renew(ctx, h, renewal.Options{
		Names: names, Validity: validity, Now: time.Now(), APIServerExtraSANs: extraSANs,
	})
	done(err)
	if err != nil {
		recordRenewal(ctx, h, o.Out, corev1.EventTypeWarning, "CertificateRenewalFailed", fmt.Sprintf("kforge could not renew %s: %v", strings.Join(names, ", "), err))
		return err
	}
	o.Out.Infof("  renewed %s on %s, valid for %s", strings.Join(res.Renewed, ", "), h.Name(), validity)
	for _, comp := range res.Restart {
		done := o.Out.Step("restart " + comp + " on " + h.Name())
		err := restartStaticPod(ctx, h, comp)
		done(err)
		if err != nil {
			return err
		}
	}
	recordRenewal(ctx, h, o.Out, corev1.EventTypeNormal, "CertificatesRenewed",
		fmt.Sprintf("kforge renewed %s, valid until %s", strings.Join(res.Renewed, ", "), time.Now().Add(validity).UTC().Format(time.RFC3339)))
	return nil
}

// expiringNames are the certificates kforge renews on h that expire
// within d.
func expiringNames(ctx context.Context, h host.Host, d time.Duration) ([]string, error) {
	list, err := expiration.Check(ctx, h, time.Now())
	if err != nil {
		return nil, err
	}
	known := renewal.Names()
	var names []string
	for _, c := range expiration.Expiring(list, d) {
		if c.RenewedBy == expiration.ByKforge && !c.CA && slices.Contains(known, c.Name) && !slices.Contains(names, c.Name) {
			names = append(names, c.Name)
		}
	}
	return names, nil
}

// restartStaticPod stops the component's running container, which the
// kubelet starts again with the renewed files, and waits until the
// component's mirror pod reports the new container Ready.
func restartStaticPod(ctx context.Context, h host.Host, component string) error {
	ps := []string{"crictl", "ps", "--name", "^" + component + "$", "--label", "io.kubernetes.pod.namespace=kube-system", "--state", "running", "--quiet", "--no-trunc"}
	old, err := host.Output(ctx, h, ps...)
	if err != nil {
		return fmt.Errorf("restart %s on %s: %w", component, h.Name(), err)
	}
	old = strings.TrimSpace(old)
	if old == "" || strings.Contains(old, "\n") {
		return fmt.Errorf("restart %s on %s: want one running %s container, crictl lists %q", component, h.Name(), component, old)
	}
	if _, err := h.Run(ctx, host.Cmd{Argv: []string{"crictl", "stop", old}, Sudo: true}); err != nil {
		return fmt.Errorf("restart %s on %s: %w", component, h.Name(), err)
	}
	var fresh, last string
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, RestartTimeout, true, func(ctx context.Context) (bool, error) {
		if fresh == "" {
			id, err := host.Output(ctx, h, ps...)
			if id = strings.TrimSpace(id); err != nil || id == "" || id == old || strings.Contains(id, "\n") {
				last = "the kubelet has not started a new container yet"
				return false, nil
			}
			fresh = id
		}
		// The renewed admin.conf, read again while the API server may be
		// restarting.
		c, err := kube.FromHost(ctx, h, layout.AdminConf, "")
		if err != nil {
			last = err.Error()
			return false, nil
		}
		pods, err := c.Kube.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "component=" + component})
		if err != nil {
			last = "the API server does not answer yet: " + err.Error()
			return false, nil
		}
		for _, p := range pods.Items {
			for _, s := range p.Status.ContainerStatuses {
				if strings.HasSuffix(s.ContainerID, "://"+fresh) {
					if s.Ready {
						return true, nil
					}
					last = "the new container is not Ready yet"
					return false, nil
				}
			}
		}
		last = "the mirror pod does not show the new container yet"
		return false, nil
	})
	if err != nil {
		logs, _ := host.Output(ctx, h, "crictl", "logs", "--tail", "20", fresh)
		return fmt.Errorf("restart %s on %s: not healthy within %s (%s); the last lines of its log:\n%s", component, h.Name(), RestartTimeout, last, logs)
	}
	return nil
}
