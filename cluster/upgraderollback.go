package cluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/providers/ssh"
	"kforge.dev/kforge/upgrade"
)

// UpgradeRollback takes the cluster (or the node o.Node) back to the
// version it ran before the last upgrade apply, from each node's backup:
// workers first, so that no kubelet is newer than the API servers, then
// the control planes, last first, each healthy before the next; then,
// for the whole cluster, the add-ons at the old version. etcd keeps its
// data, and its newer version where it ran it (etcd does not run on data
// a newer minor wrote); only with o.EtcdSnapshot is its data restored,
// which loses every write since the snapshot.
func UpgradeRollback(ctx context.Context, o UpgradeOptions) error {
	start := time.Now()
	c, err := LoadConfig(o.ConfigFile, Overrides{})
	if err != nil {
		return err
	}
	if err := o.Trust.Apply(c); err != nil {
		return err
	}
	r := &upgradeRun{c: c, pool: ssh.NewPool(), hosts: map[string]config.Host{}}
	defer r.close()
	o.Connect.Pool = r.pool
	nodes, err := r.connectCluster(ctx, o)
	if err != nil {
		return err
	}
	names := map[string]string{} // address of the cluster file entry → node name
	for _, n := range nodes.Items {
		if hc, ok := hostOfNode(c, n); ok {
			r.hosts[n.Name] = hc
			names[hc.Address+"/"+hc.Name] = n.Name
		}
	}
	order := c.Workers()
	cps := c.ControlPlanes()
	slices.Reverse(cps)
	order = append(order, cps...)
	var from string
	rolled := 0
	for _, n := range order {
		name, ok := names[n.Address+"/"+n.Name]
		if !ok {
			o.Out.Infof("%s is not a node of the cluster: skipped", n.Address)
			continue
		}
		if o.Node != "" && o.Node != name {
			continue
		}
		v, err := r.rollBackOne(ctx, o, n, name)
		if err != nil {
			return err
		}
		if v != "" {
			from = v
			rolled++
		}
	}
	if o.Node != "" && rolled == 0 {
		return fmt.Errorf("--node %s: no node of that name with an upgrade to roll back", o.Node)
	}
	if rolled == 0 {
		o.Out.Infof("no node has an upgrade to roll back")
		return nil
	}
	if o.Node == "" {
		old, err := images.For(from)
		if err != nil {
			return err
		}
		r.c.KubernetesVersion = from
		first, err := firstControlPlane(ctx, r.c, o.Connect)
		if err != nil {
			return err
		}
		fh, err := Connect(ctx, first, o.Connect)
		if err != nil {
			return err
		}
		defer fh.Close()
		done := o.Out.Step("the add-ons back at " + from)
		err = r.upgradeAddOns(ctx, o, first, fh, old)
		done(err)
		if err != nil {
			return err
		}
	}
	if o.EtcdSnapshot != "" {
		if err := EtcdSnapshotRestore(ctx, EtcdSnapshotOptions{Connect: o.Connect, ConfigFile: o.ConfigFile, File: o.EtcdSnapshot, Out: o.Out}); err != nil {
			return err
		}
	}
	o.Out.Total(fmt.Sprintf("kforge upgrade rollback to %s finished in %s", from, time.Since(start).Round(100*time.Millisecond)))
	return nil
}

// rollBackOne restores one node from its backup and waits until it is
// healthy at the old version; it returns that version, or "" when the
// node has nothing to roll back.
func (r *upgradeRun) rollBackOne(ctx context.Context, o UpgradeOptions, n config.Host, name string) (string, error) {
	h, err := Connect(ctx, n, o.Connect)
	if err != nil {
		return "", fmt.Errorf("%s: %w", n.Address, err)
	}
	defer h.Close()
	rec, err := phases.ReadUpgradeRecord(ctx, h)
	if err != nil {
		return "", err
	}
	if rec == nil || rec.To == rec.From {
		o.Out.Infof("%s: no upgrade to roll back", name)
		return "", nil
	}
	old, err := images.For(rec.From)
	if err != nil {
		return "", err
	}
	target, err := images.For(rec.To)
	if err != nil {
		return "", err
	}
	r.plan = upgrade.Plan{From: rec.From, To: rec.To, Target: target}
	worker := n.Role != config.RoleControlPlane
	command := "init"
	if worker {
		command = "join"
	}
	c := *r.c
	c.KubernetesVersion = rec.From
	rr := *r
	rr.c = &c
	d, err := rr.nodeData(ctx, o, command, n, h, nil)
	if err != nil {
		return "", err
	}
	done := o.Out.Step(fmt.Sprintf("roll %s back from %s to %s", name, rec.To, rec.From))
	err = func() error {
		var want map[string]string
		if worker {
			if err := drainForUpgrade(ctx, r.admin, name, o.Timeout, o.Out); err != nil {
				return err
			}
		} else {
			want = controlPlaneImages(old)
			if rec.EtcdUpgraded {
				want["etcd"] = target.Etcd
			}
		}
		_, kubeletChanged, err := phases.RestoreNode(ctx, d)
		if err != nil {
			return err
		}
		if err := rr.healthyAgain(ctx, h, d, name, rec.From, want, kubeletChanged, max(o.Timeout, RollbackTimeout)); err != nil {
			return err
		}
		if worker {
			if err := uncordon(ctx, r.admin, name); err != nil {
				return err
			}
		}
		rec.To, rec.Done = rec.From, true
		return phases.WriteUpgradeRecord(ctx, h, *rec)
	}()
	done(err)
	if err != nil {
		return "", err
	}
	if rec.EtcdUpgraded && old.Etcd != target.Etcd {
		o.Out.Infof("  %s: etcd stays at %s: its data may be in that version's format, which %s does not read", name, target.Etcd, old.Etcd)
	}
	return rec.From, nil
}
