package kube

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
)

// WaitLeasesRenewed waits until each Lease in names, in namespace, has been
// taken or renewed by a holder since the call began: the components that
// hold them (the controller manager's and the scheduler's leader leases)
// run and reach the API server. A lease held when the call begins counts
// once its holder renews it, which a dead holder does not, except for the
// names in held, for which a holder that renewed it within its duration, by
// the API server's clock, is enough. It returns the names not renewed at
// the end; on timeout the error is a *WaitError.
func (c *Client) WaitLeasesRenewed(ctx context.Context, namespace string, names, held []string, timeout time.Duration) ([]string, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	kc, err := c.watchClient()
	if err != nil {
		return names, err
	}
	leases := kc.CoordinationV1().Leases(namespace)
	var now time.Time
	if len(held) > 0 {
		if now, err = c.ServerTime(ctx); err != nil {
			return names, err
		}
	}
	before := map[string]string{}
	state := map[string]string{}
	for _, n := range names {
		l, err := leases.Get(ctx, n, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			state[n] = "not taken yet"
		case err != nil:
			return names, fmt.Errorf("lease %s/%s on %s: %w", namespace, n, c.Server(), err)
		case slices.Contains(held, n) && holder(l) != "" && current(l, now):
			state[n] = ""
		default:
			before[n] = leaseStamp(l)
			state[n] = "held by " + holder(l) + ", not renewed since " + before[n]
		}
	}
	left := func() []string {
		var out []string
		for _, n := range names {
			if state[n] != "" {
				out = append(out, n)
			}
		}
		return out
	}
	_, err = watchtools.UntilWithSync(ctx, fieldListWatch(leases, ""), &coordinationv1.Lease{}, nil, func(ev watch.Event) (bool, error) {
		l, ok := ev.Object.(*coordinationv1.Lease)
		if !ok || !slices.Contains(names, l.Name) || ev.Type == watch.Deleted {
			return false, nil
		}
		if holder(l) != "" && leaseStamp(l) != before[l.Name] {
			state[l.Name] = ""
		}
		return len(left()) == 0, nil
	})
	if err == nil {
		return nil, nil
	}
	rest := left()
	if ctx.Err() == nil {
		return rest, fmt.Errorf("watch leases in %s on %s: %w", namespace, c.Server(), err)
	}
	var last []string
	for _, n := range rest {
		last = append(last, n+": "+state[n])
	}
	sort.Strings(last)
	return rest, &WaitError{What: "leases " + strings.Join(rest, ", "), Waited: time.Since(start), Last: strings.Join(last, "; "), Err: ctx.Err()}
}

// current reports whether l was renewed within its duration before now
// (with a second of slack for the Date header's resolution).
func current(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false
	}
	return now.Sub(l.Spec.RenewTime.Time) < time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second+time.Second
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// leaseStamp identifies one taking or renewal of a lease.
func leaseStamp(l *coordinationv1.Lease) string {
	var acquired, renewed string
	if t := l.Spec.AcquireTime; t != nil {
		acquired = t.UTC().Format(time.RFC3339Nano)
	}
	if t := l.Spec.RenewTime; t != nil {
		renewed = t.UTC().Format(time.RFC3339Nano)
	}
	return holder(l) + " " + acquired + " " + renewed
}
