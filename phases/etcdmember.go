package phases

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"regexp"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kforge.dev/kforge/etcdcluster"
	"kforge.dev/kforge/layout"
)

// How long a joining member may take to catch up before its promotion,
// and how often it is asked.
const (
	EtcdPromoteTimeout  = 2 * time.Minute
	EtcdPromoteInterval = 500 * time.Millisecond
)

var etcdManifest = layout.ManifestsDir + "/etcd.yaml"

// etcdJoin adds this control plane's etcd to the cluster's, through a
// running control plane (ControlPlaneSource), as a learner: a member that
// receives the data without voting, so that the cluster's quorum does not
// change until it has caught up (etcd-promote). It then writes etcd's
// manifest with the members it joins as --initial-cluster and
// --initial-cluster-state existing. A re-run keeps the manifest's
// --initial-cluster (etcd reads it only on its first start), and a run
// killed after the member was added finds it by its peer URL.
func etcdJoin(ctx context.Context, d *Data) error {
	if ic, err := joinedInitialCluster(ctx, d); err != nil {
		return err
	} else if ic != "" {
		d.Results.EtcdInitialCluster = ic
		return etcdPhase(ctx, d)
	}
	c, err := d.sourceEtcd(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ic, added, err := etcdcluster.AddLearner(ctx, c, d.NodeName, d.etcdPeerURL())
	if err != nil {
		return err
	}
	d.Results.EtcdInitialCluster, d.Results.EtcdMemberAdded = ic, added
	d.Out.Logf("etcd on %s joins as a learner: --initial-cluster=%s", d.Host.Name(), ic)
	return etcdPhase(ctx, d)
}

// etcdPromote makes this control plane's etcd a voting member once it has
// caught up with the leader; the API server that uses it starts after.
func etcdPromote(ctx context.Context, d *Data) error {
	c, err := d.sourceEtcd(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	if err := etcdcluster.Promote(ctx, c, d.etcdPeerURL(), EtcdPromoteInterval, EtcdPromoteTimeout); err != nil {
		return d.diagnose(ctx, err, "etcd")
	}
	d.Out.Logf("etcd on %s votes after %s", d.Host.Name(), time.Since(start).Round(time.Millisecond))
	return nil
}

// etcdLeave takes this host's etcd member out of the cluster before reset
// removes it, through the host's own etcd: the others then neither wait
// for it nor count it in their quorum. It refuses when the voting members
// left would not make a quorum, unless Force. A host without an etcd
// manifest (a worker, a reset host) and the last member of a cluster (the
// whole cluster goes) have nothing to leave.
func etcdLeave(ctx context.Context, d *Data) error {
	if _, err := d.Host.Stat(ctx, etcdManifest); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	c, err := etcdcluster.Dial(ctx, d.Host)
	if err != nil {
		d.Out.Infof("  ! %s: %v; if its etcd member is still in the cluster, remove it from a running control plane (kforge etcd members remove)", d.Host.Name(), err)
		return nil
	}
	defer c.Close()
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := etcdcluster.Members(lctx, c)
	if err != nil {
		d.Out.Infof("  ! %s: its etcd does not answer (%v); if its member is still in the cluster, remove it from a running control plane (kforge etcd members remove)", d.Host.Name(), err)
		return nil
	}
	self, err := c.Status(lctx, etcdcluster.LocalEndpoint)
	if err != nil {
		d.Out.Infof("  ! %s: its etcd does not answer (%v)", d.Host.Name(), err)
		return nil
	}
	var me *etcdcluster.Member
	for i := range list {
		if list[i].ID == self.Header.MemberId {
			me = &list[i]
		}
	}
	if me == nil || len(list) == 1 {
		return nil
	}
	healthy := func(m etcdcluster.Member) bool { return etcdcluster.Healthy(ctx, c, m) }
	if err := etcdcluster.Remove(ctx, c, me.PeerURLs[0], healthy, d.Force); err != nil {
		if d.Force {
			// The host goes anyway; the member is then one the others
			// wait for until it is removed from a running control plane.
			d.Out.Infof("  ! etcd member %s (%x) of %s could not leave (%v); --force resets the host anyway: remove the member from a running control plane (kforge etcd members remove %s)", me.Name, me.ID, d.Host.Name(), err, me.Name)
			return nil
		}
		return fmt.Errorf("etcd member %s (%x) of %s cannot leave: %w", me.Name, me.ID, d.Host.Name(), err)
	}
	d.Out.Infof("  etcd member %s (%x) left the cluster; %d remain", me.Name, me.ID, len(list)-1)
	return nil
}

// sourceEtcd is an etcd client to the running control plane a joining one
// joins through.
func (d *Data) sourceEtcd(ctx context.Context) (*clientv3.Client, error) {
	if d.ControlPlaneSource == nil {
		return nil, fmt.Errorf("no running control plane to join etcd through: kforge init -f joins control planes (or kforge join --control-plane)")
	}
	return etcdcluster.Dial(ctx, d.ControlPlaneSource)
}

// etcdPeerURL is where the other members reach this host's etcd.
func (d *Data) etcdPeerURL() string {
	return "https://" + net.JoinHostPort(d.AdvertiseAddress, strconv.Itoa(layout.EtcdPeerPort))
}

var (
	joinedStateRe    = regexp.MustCompile(`--initial-cluster-state=?"?existing`)
	initialClusterRe = regexp.MustCompile(`--initial-cluster=([^"\s]+)`)
)

// joinedInitialCluster is the --initial-cluster of the etcd manifest an
// earlier join wrote on the host, or "".
func joinedInitialCluster(ctx context.Context, d *Data) (string, error) {
	b, err := d.Host.ReadFile(ctx, etcdManifest)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	if !joinedStateRe.Match(b) {
		return "", nil
	}
	if m := initialClusterRe.FindSubmatch(b); m != nil {
		return string(m[1]), nil
	}
	return "", nil
}
