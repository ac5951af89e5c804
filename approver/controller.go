package approver

import (
	"context"
	"fmt"
	"io"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"
)

// Reasons put on the conditions this approver sets.
const (
	ApprovedReason = "KforgeNodeServingCertificate"
	DeniedReason   = "KforgeNotNodeServingCertificate"
)

// resync lists every request again this often, so one whose Node was
// missing is looked at again.
const resync = 5 * time.Minute

// Controller approves or denies pending kubelet-serving requests as Review
// says, one request at a time from a rate-limited queue.
type Controller struct {
	client kubernetes.Interface
	lister certlisters.CertificateSigningRequestLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	log    io.Writer
}

// New makes a controller on client that watches kubelet-serving requests
// through factory (start it after New). Decisions are logged to log.
func New(client kubernetes.Interface, log io.Writer) (*Controller, informers.SharedInformerFactory) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, resync, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.signerName", certificatesv1.KubeletServingSignerName).String()
	}))
	inf := factory.Certificates().V1().CertificateSigningRequests()
	c := &Controller{
		client: client,
		lister: inf.Lister(),
		synced: inf.Informer().HasSynced,
		queue:  workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "kubelet-serving"}),
		log:    log,
	}
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return c, factory
}

// Run works the queue until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return fmt.Errorf("the certificate signing request cache did not sync: %w", ctx.Err())
	}
	fmt.Fprintln(c.log, "approving kubelet-serving certificate signing requests")
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		for c.next(ctx) {
		}
	}, time.Second)
	<-ctx.Done()
	return nil
}

func (c *Controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.Sync(ctx, key); err != nil {
		fmt.Fprintf(c.log, "request %s: %v (retrying)\n", key, err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// Sync decides the request named: pending kubelet-serving requests are
// approved or denied; others are left alone. An error means try again.
func (c *Controller) Sync(ctx context.Context, name string) error {
	csr, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName || Decided(csr) {
		return nil
	}
	var node *corev1.Node
	if n := NodeName(csr); n != "" {
		node, err = c.client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			node, err = nil, nil
		}
		if err != nil {
			return err
		}
	}
	verdict, err := Decide(ctx, c.client, csr, node, "kforge-csr-approver")
	if err != nil {
		return err
	}
	fmt.Fprintf(c.log, "request %s from %s: %s\n", csr.Name, csr.Spec.Username, verdict)
	return nil
}

// Decide approves csr, a pending kubelet-serving request, when Review
// passes it against node, and denies it otherwise, writing the decision
// with fieldManager. It returns "approved" or "denied: why". kforge's
// approver decides this way, and so does kforge init for its own node's
// first request, with the admin's credentials.
func Decide(ctx context.Context, client kubernetes.Interface, csr *certificatesv1.CertificateSigningRequest, node *corev1.Node, fieldManager string) (string, error) {
	csr = csr.DeepCopy()
	cond := certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: ApprovedReason, Message: "kforge: the requester is the node and the SANs are its own addresses",
		LastUpdateTime: metav1.Now(),
	}
	verdict := "approved"
	if err := Review(csr, node); err != nil {
		cond.Type, cond.Reason, cond.Message = certificatesv1.CertificateDenied, DeniedReason, "kforge: "+err.Error()
		verdict = "denied: " + err.Error()
	}
	csr.Status.Conditions = append(csr.Status.Conditions, cond)
	if _, err := client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return "", err
	}
	return verdict, nil
}

// Decided says whether csr is already approved, denied or failed.
func Decided(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			return true
		}
	}
	return false
}

// LeaseName is the Lease in kube-system that the approver's replicas elect
// a leader with.
const LeaseName = "kforge-csr-approver"

// RunElected runs the controller while this process, identity, holds the
// approver's Lease in namespace, so that one replica decides at a time. It
// returns when ctx ends or the lease is lost.
func RunElected(ctx context.Context, client kubernetes.Interface, namespace, identity string, log io.Writer) error {
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, namespace, LeaseName, client.CoreV1(), client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: identity})
	if err != nil {
		return err
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var runErr error
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				c, factory := New(client, log)
				factory.Start(ctx.Done())
				runErr = c.Run(ctx)
				cancel()
			},
			OnStoppedLeading: func() { cancel() },
		},
	})
	switch {
	case parent.Err() != nil:
		return nil
	case runErr != nil:
		return runErr
	}
	return fmt.Errorf("lost the lease %s/%s", namespace, LeaseName)
}
