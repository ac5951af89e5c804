// Package etcdcluster changes the membership of a cluster's stacked etcd
// the way kubeadm does for control planes that join and leave: a new
// member is added as a learner, which receives the data without voting,
// and promoted once it has caught up; a member leaves only when the ones
// that stay still make a quorum. It talks to etcd with etcd's own client.
package etcdcluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Member is one member as a joining member's --initial-cluster names it.
type Member struct {
	ID       uint64
	Name     string
	PeerURLs []string
	// ClientURLs are empty until the member has started.
	ClientURLs []string
	Learner    bool
}

// Members lists the cluster's members.
func Members(ctx context.Context, c *clientv3.Client) ([]Member, error) {
	resp, err := c.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("etcd member list: %w", err)
	}
	return members(resp.Members), nil
}

func members(ms []*etcdserverpb.Member) []Member {
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, Learner: m.IsLearner})
	}
	return out
}

// AddLearner adds the member name at peerURL as a learner and returns the
// --initial-cluster its etcd starts with (--initial-cluster-state
// existing), and whether it added the member. A re-run finds the member
// it added before, by its peer URL, and adds nothing.
func AddLearner(ctx context.Context, c *clientv3.Client, name, peerURL string) (initialCluster string, added bool, err error) {
	list, err := Members(ctx, c)
	if err != nil {
		return "", false, err
	}
	if !slices.ContainsFunc(list, func(m Member) bool { return slices.Contains(m.PeerURLs, peerURL) }) {
		resp, err := c.MemberAddAsLearner(ctx, []string{peerURL})
		if err != nil {
			return "", false, fmt.Errorf("etcd member add --learner %s: %w", peerURL, err)
		}
		list, added = members(resp.Members), true
	}
	return InitialCluster(list, name, peerURL), added, nil
}

// InitialCluster is etcd's --initial-cluster for a member joining list as
// name at peerURL: every started member by its name, and the new one
// (which has no name until it starts) by name.
func InitialCluster(list []Member, name, peerURL string) string {
	var parts []string
	for _, m := range list {
		n := m.Name
		if slices.Contains(m.PeerURLs, peerURL) {
			n = name
		}
		if n == "" {
			continue // another member added but not started: it is not ours to name
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Promote makes the learner at peerURL a voting member once it has caught
// up with the leader, asking again every interval until timeout. A member
// that already votes is left as it is.
func Promote(ctx context.Context, c *clientv3.Client, peerURL string, interval, timeout time.Duration) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := Members(ctx, c)
		if err != nil {
			last = err
			return false, nil
		}
		i := slices.IndexFunc(list, func(m Member) bool { return slices.Contains(m.PeerURLs, peerURL) })
		switch {
		case i < 0:
			return false, fmt.Errorf("no etcd member has peer URL %s: add it first", peerURL)
		case !list[i].Learner:
			return true, nil
		}
		_, err = c.MemberPromote(ctx, list[i].ID)
		if err == nil {
			return true, nil
		}
		// Not caught up yet (ErrGRPCLearnerNotReady), or the leader is
		// changing: ask again until the timeout.
		last = err
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("promote the etcd learner at %s within %s: %w (last answer: %v)", peerURL, timeout, err, last)
	}
	return nil
}

// Remove takes the member at peerURL out of the cluster. It refuses when
// the voting members left, of which healthy answer, would not make a
// quorum, unless force. Removing a member that is already gone is fine.
func Remove(ctx context.Context, c *clientv3.Client, peerURL string, healthy func(Member) bool, force bool) error {
	list, err := Members(ctx, c)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(m Member) bool { return slices.Contains(m.PeerURLs, peerURL) })
	if i < 0 {
		return nil
	}
	if !force {
		if err := QuorumAfterRemoval(list, list[i].ID, healthy); err != nil {
			return err
		}
	}
	// etcd refuses a reconfiguration while its leader has not heard from
	// every peer for a while (ErrGRPCUnhealthy), as just after a member
	// joined or came back: ask again for a bounded time.
	var last error
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, removeTimeout, true, func(ctx context.Context) (bool, error) {
		_, last = c.MemberRemove(ctx, list[i].ID)
		switch {
		case last == nil || errors.Is(last, rpctypes.ErrGRPCMemberNotFound) || errors.Is(last, rpctypes.ErrMemberNotFound):
			return true, nil
		case errors.Is(last, rpctypes.ErrGRPCUnhealthy) || errors.Is(last, rpctypes.ErrUnhealthy):
			return false, nil
		}
		return false, last
	})
	if err != nil {
		return fmt.Errorf("etcd member remove %s (%x): %w (last answer: %v)", list[i].Name, list[i].ID, err, last)
	}
	return nil
}

// removeTimeout bounds the wait for etcd to accept a removal.
const removeTimeout = 30 * time.Second

// QuorumAfterRemoval says why removing id would leave the voting members
// without a healthy majority, or nil when it would not.
func QuorumAfterRemoval(list []Member, id uint64, healthy func(Member) bool) error {
	voters, up := 0, 0
	for _, m := range list {
		if m.ID == id || m.Learner {
			continue
		}
		voters++
		if healthy(m) {
			up++
		}
	}
	if voters == 0 {
		return fmt.Errorf("it is etcd's last voting member: removing it ends the cluster's state (reset the whole cluster instead, or use --force)")
	}
	if up < voters/2+1 {
		return fmt.Errorf("after it leaves, %d of the %d voting etcd members answer, short of the %d a quorum needs: bring the others back first, or use --force", up, voters, voters/2+1)
	}
	return nil
}
