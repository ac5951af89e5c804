package kube

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/util/flowcontrol"
)

// PollInterval is how often WaitAPIServer asks /readyz.
const PollInterval = 50 * time.Millisecond

// WaitError is a wait that ran out of time. It says what was awaited, for
// how long, and the last thing seen, so that the message tells what is
// wrong rather than only that time is up.
type WaitError struct {
	// What was awaited, e.g. "API server https://10.0.0.5:6443 /readyz".
	What   string
	Waited time.Duration
	// Last is the last answer or error seen; empty when none came.
	Last string
	// Err is the context's error: DeadlineExceeded or Canceled.
	Err error
}

func (e *WaitError) Error() string {
	verb := "not ready after"
	if errors.Is(e.Err, context.Canceled) {
		verb = "cancelled while waiting, after"
	}
	last := e.Last
	if last == "" {
		last = "no answer"
	}
	return fmt.Sprintf("%s %s %s; last seen: %s", e.What, verb, e.Waited.Round(100*time.Millisecond), last)
}

func (e *WaitError) Unwrap() error { return e.Err }

// WaitAPIServer polls the API server's /readyz every PollInterval until it
// answers ok or timeout passes. On timeout the error is a *WaitError
// carrying the last transport error or the checks /readyz reported failed.
func (c *Client) WaitAPIServer(ctx context.Context, timeout time.Duration) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The loop paces itself; client-go's rate limiter would only fail a
	// request near the deadline with its own error instead of the API
	// server's.
	cfg := rest.CopyConfig(c.Config)
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	rc := kc.Discovery().RESTClient()
	var last string
	// Sliding: the next request goes PollInterval after the last one
	// ended, not on a ticker, so a slow answer does not bring the next one
	// at once.
	err = wait.Backoff{Duration: PollInterval}.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		attempt, stop := context.WithTimeout(ctx, 5*time.Second)
		defer stop()
		var code int
		body, err := rc.Get().AbsPath("/readyz").Param("verbose", "").Do(attempt).StatusCode(&code).Raw()
		if err == nil && code == http.StatusOK {
			return true, nil
		}
		if ctx.Err() == nil || last == "" {
			last = readyzFailure(code, body, err)
		}
		return false, nil
	})
	if err != nil {
		return &WaitError{What: "API server " + c.Server() + " /readyz", Waited: time.Since(start), Last: last, Err: ctx.Err()}
	}
	return nil
}

// readyzFailure sums up a failed /readyz: the failed checks when the API
// server answered, else the request's error.
func readyzFailure(code int, body []byte, err error) string {
	var failed []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "[-]") {
			failed = append(failed, strings.TrimPrefix(l, "[-]"))
		}
	}
	switch {
	case len(failed) > 0:
		return fmt.Sprintf("HTTP %d, failed checks: %s", code, strings.Join(failed, "; "))
	case err != nil:
		return err.Error()
	}
	return fmt.Sprintf("HTTP %d: %s", code, strings.TrimSpace(string(body)))
}

// WaitNodeReady watches the Node called name until its Ready condition is
// True or timeout passes. On timeout the error is a *WaitError saying
// whether the node never registered or what its Ready condition says.
func (c *Client) WaitNodeReady(ctx context.Context, name string, timeout time.Duration) error {
	return c.WaitNode(ctx, name, timeout, NodeReady)
}

// WaitNode watches the Node called name until done accepts it or timeout
// passes. done also describes the node, for the error on timeout.
func (c *Client) WaitNode(ctx context.Context, name string, timeout time.Duration, done func(*corev1.Node) (bool, string)) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	kc, err := c.watchClient()
	if err != nil {
		return err
	}
	lw := fieldListWatch(kc.CoreV1().Nodes(), fields.OneTermEqualSelector("metadata.name", name).String())
	last := "the node has not registered (no Node object yet; is the kubelet running?)"
	_, err = watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, nil, func(ev watch.Event) (bool, error) {
		n, ok := ev.Object.(*corev1.Node)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted {
			last = "the Node object was deleted"
			return false, nil
		}
		ok, why := done(n)
		last = why
		return ok, nil
	})
	if err == nil {
		return nil
	}
	if ctx.Err() == nil {
		return fmt.Errorf("watch node %s on %s: %w", name, c.Server(), err)
	}
	return &WaitError{What: "node " + name, Waited: time.Since(start), Last: last, Err: ctx.Err()}
}

// watchClient is a clientset for watches: they last as long as their
// context allows, where the per-request timeout of c.Config would cut them.
func (c *Client) watchClient() (kubernetes.Interface, error) {
	cfg := rest.CopyConfig(c.Config)
	cfg.Timeout = 0
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	return kc, nil
}

// lister is a typed client's List and Watch.
type lister[L runtime.Object] interface {
	List(context.Context, metav1.ListOptions) (L, error)
	Watch(context.Context, metav1.ListOptions) (watch.Interface, error)
}

// fieldListWatch lists and watches api's objects that match a field
// selector.
func fieldListWatch[L runtime.Object](api lister[L], fieldSelector string) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fieldSelector
			return api.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fieldSelector
			return api.Watch(ctx, o)
		},
	}
}

// NodeReady reports whether n's Ready condition is True, and describes the
// condition either way.
func NodeReady(n *corev1.Node) (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		why := "Ready=" + string(c.Status)
		if c.Reason != "" || c.Message != "" {
			why += fmt.Sprintf(" (%s: %s)", c.Reason, c.Message)
		}
		return c.Status == corev1.ConditionTrue, why
	}
	return false, "registered, no Ready condition reported yet"
}

// NodeInitialized reports whether n has registered and its kubelet has
// set up its CSINode, for clusters whose network (and so the node's Ready
// condition) comes later. Until then the kubelet reports NotReady with
// "CSINode is not yet initialized" or "failed to initialize CSINode".
func NodeInitialized(n *corev1.Node) (bool, string) {
	ready, why := NodeReady(n)
	if ready {
		return true, why
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && strings.Contains(c.Message, "CSINode") {
			return false, why
		}
	}
	return true, "registered"
}
