package phases

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/host"
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
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ClusterAdminsBinding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: certs.ClusterAdminsGroup}},
	}
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

// applyObjects server-side applies objects given as maps (apiVersion,
// kind, metadata, ...) and logs how many changed.
func (d *Data) applyObjects(ctx context.Context, c *kube.Client, what string, objs ...map[string]any) ([]kube.Applied, error) {
	var docs []string
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		docs = append(docs, string(b))
	}
	applied, err := c.Apply(ctx, []byte(strings.Join(docs, "---\n")))
	if err != nil {
		return applied, err
	}
	d.logApplied(what, applied)
	return applied, nil
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

// object is a Kubernetes object as a map, for applyObjects.
func object(apiVersion, kind, namespace, name string, fields map[string]any) map[string]any {
	meta := map[string]any{"name": name}
	if namespace != "" {
		meta["namespace"] = namespace
	}
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
	for k, v := range fields {
		o[k] = v
	}
	return o
}

// roleRef and subjects spell RBAC references for object.
func roleRef(kind, name string) map[string]any {
	return map[string]any{"apiGroup": rbacv1.GroupName, "kind": kind, "name": name}
}

func groups(names ...string) []any {
	var out []any
	for _, n := range names {
		out = append(out, map[string]any{"apiGroup": rbacv1.GroupName, "kind": rbacv1.GroupKind, "name": n})
	}
	return out
}

// diagnose adds to a failed wait the last lines of the logs of the named
// static pods and, with "kubelet", of the kubelet, read from the host.
func (d *Data) diagnose(ctx context.Context, err error, components ...string) error {
	// The wait may have used up ctx; reading logs gets its own bound.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var b strings.Builder
	b.WriteString(err.Error())
	for _, name := range components {
		var out string
		if name == "kubelet" {
			out = d.logTail(ctx, "kubelet", 15)
		} else {
			out = d.podLogTail(ctx, name, 15)
		}
		fmt.Fprintf(&b, "\nlast lines of %s's log on %s:\n%s", name, d.Host.Name(), indent(out))
	}
	return fmt.Errorf("%s", b.String())
}

// podLogTail returns the last n lines of the newest log of a static pod's
// container, as the kubelet keeps it under /var/log/pods.
func (d *Data) podLogTail(ctx context.Context, component string, n int) string {
	out, err := host.Probe(ctx, d.Host, "sh", "-c",
		`f=$(ls -t /var/log/pods/kube-system_"$1"-"$2"_*/"$1"/*.log 2>/dev/null | head -n 1); `+
			`if [ -n "$f" ]; then echo "($f)"; tail -n "$3" "$f"; else echo "(no log under /var/log/pods: the kubelet has not started $1)"; fi`,
		"sh", component, d.NodeName, fmt.Sprint(n))
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	return out
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// hostFileExists is host.Exists with the host named in its error.
func (d *Data) hostFileExists(ctx context.Context, p string) (bool, error) {
	ok, err := host.Exists(ctx, d.Host, path.Clean(p))
	if err != nil {
		return false, fmt.Errorf("%s on %s: %w", p, d.Host.Name(), err)
	}
	return ok, nil
}
