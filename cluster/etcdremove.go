package cluster

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kforge.dev/kforge/etcdcluster"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
)

// EtcdRemoveOptions are the inputs of `kforge etcd members remove`.
type EtcdRemoveOptions struct {
	Connect    ConnectOptions
	ConfigFile string
	// Name is the etcd member's name, which is its control plane's node
	// name.
	Name string
	// Force removes the member even when the others would lose quorum.
	Force bool
	Out   io.Writer
}

// EtcdRemoveMember takes a control plane that cannot leave by itself (its
// machine died) out of the cluster, from a running control plane: its
// etcd member, refused when the members left would not make a quorum
// (unless Force), then its Node. A replacement can then join under the
// same name or a new one. Either already gone is fine.
func EtcdRemoveMember(ctx context.Context, o EtcdRemoveOptions) error {
	h, closeAll, err := controlPlaneHost(ctx, o.ConfigFile, &o.Connect)
	if err != nil {
		return err
	}
	defer closeAll()
	ec, err := etcdcluster.Dial(ctx, h)
	if err != nil {
		return err
	}
	defer ec.Close()
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	list, err := etcdcluster.Members(lctx, ec)
	cancel()
	if err != nil {
		return fmt.Errorf("etcd on %s: %w", h.Name(), err)
	}
	var names []string
	removed := false
	for _, m := range list {
		names = append(names, m.Name)
		if m.Name != o.Name {
			continue
		}
		healthy := func(m etcdcluster.Member) bool { return etcdcluster.Healthy(ctx, ec, m) }
		if err := etcdcluster.Remove(ctx, ec, m.PeerURLs[0], healthy, o.Force); err != nil {
			return fmt.Errorf("etcd member %s (%x): %w", m.Name, m.ID, err)
		}
		fmt.Fprintf(o.Out, "etcd member %s (%x) removed; %d remain\n", m.Name, m.ID, len(list)-1)
		removed = true
	}
	if !removed {
		fmt.Fprintf(o.Out, "no etcd member is named %s (members: %s)\n", o.Name, strings.Join(names, ", "))
	}
	kc, err := kube.FromHost(ctx, h, layout.AdminConf, "")
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch err := kc.Kube.CoreV1().Nodes().Delete(dctx, o.Name, metav1.DeleteOptions{}); {
	case apierrors.IsNotFound(err):
		fmt.Fprintf(o.Out, "node %s is not in the cluster\n", o.Name)
	case err != nil:
		return fmt.Errorf("delete node %s: %w", o.Name, err)
	default:
		fmt.Fprintf(o.Out, "node %s deleted; its pods are scheduled elsewhere\n", o.Name)
	}
	return nil
}
