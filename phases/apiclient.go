package phases

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
)

// ClusterAdminsBinding binds admin.conf's group to cluster-admin, as
// kubeadm's ClusterRoleBinding of the same name.
const ClusterAdminsBinding = "kubeadm:cluster-admins"

// adminClient returns a client with admin.conf, talking to server (the
// kubeconfig's own server, the control-plane endpoint, when empty), after
// making sure admin.conf's group is bound to cluster-admin.
func (d *Data) adminClient(ctx context.Context, server string) (*kube.Client, error) {
	c, err := kube.FromHost(ctx, d.Host, layout.AdminConf, server)
	if err != nil {
		return nil, err
	}
	if err := d.ensureClusterAdmins(ctx, c, server); err != nil {
		return nil, err
	}
	return c, nil
}

// ensureClusterAdmins creates the ClusterRoleBinding that gives
// admin.conf's group (kubeadm:cluster-admins) cluster-admin. admin.conf
// cannot create it before it exists; then super-admin.conf (system:masters)
// does.
func (d *Data) ensureClusterAdmins(ctx context.Context, admin *kube.Client, server string) error {
	crb := kube.ClusterRoleBinding(ClusterAdminsBinding, "cluster-admin", kube.Groups(certs.ClusterAdminsGroup)...)
	_, err := admin.Kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
	switch {
	case err == nil, apierrors.IsAlreadyExists(err):
		return nil
	case !apierrors.IsForbidden(err):
		return fmt.Errorf("ClusterRoleBinding %s with %s: %w", ClusterAdminsBinding, layout.AdminConf, err)
	}
	super, err := kube.FromHost(ctx, d.Host, layout.SuperAdminConf, server)
	if err != nil {
		return fmt.Errorf("admin.conf has no rights yet and super-admin.conf is needed to grant them: %w", err)
	}
	_, err = super.Kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("ClusterRoleBinding %s with %s: %w", ClusterAdminsBinding, layout.SuperAdminConf, err)
	}
	d.Out.Logf("created ClusterRoleBinding %s for admin.conf's group %s", ClusterAdminsBinding, certs.ClusterAdminsGroup)
	return nil
}

// apply server-side applies typed objects and logs which ones changed.
func (d *Data) apply(ctx context.Context, c *kube.Client, what string, objs ...runtime.Object) error {
	applied, err := c.ApplyObjects(ctx, objs...)
	if err != nil {
		return err
	}
	d.logApplied(what, applied)
	return nil
}

func (d *Data) logApplied(what string, applied []kube.Applied) {
	var changed []string
	for _, a := range applied {
		if a.Changed {
			changed = append(changed, a.String())
		}
	}
	if len(changed) == 0 {
		d.Out.Logf("%s: %d objects already as applied", what, len(applied))
		return
	}
	d.Out.Logf("%s: applied %s", what, strings.Join(changed, ", "))
}
