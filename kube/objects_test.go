package kube

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestTypedObjectsBecomeApplyable(t *testing.T) {
	for _, tc := range []struct {
		obj                    runtime.Object
		apiVersion, kind, name string
	}{
		{ClusterRoleBinding("b", "cluster-admin", Groups("g1", "g2")...), "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "b"},
		{RoleBinding(metav1.NamespacePublic, "rb", "r"), "rbac.authorization.k8s.io/v1", "RoleBinding", "rb"},
		{ConfigMapReader(metav1.NamespaceSystem, "r", "cm"), "rbac.authorization.k8s.io/v1", "Role", "r"},
		{ConfigMap(metav1.NamespaceSystem, "cm", map[string]string{"k": "v"}), "v1", "ConfigMap", "cm"},
	} {
		u, err := toUnstructured(tc.obj)
		if err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		if u.GetAPIVersion() != tc.apiVersion || u.GetKind() != tc.kind || u.GetName() != tc.name {
			t.Errorf("%s: got %s %s %s", tc.kind, u.GetAPIVersion(), u.GetKind(), u.GetName())
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "creationTimestamp"); found {
			t.Errorf("%s: a null creationTimestamp would be applied", tc.kind)
		}
	}
	u, _ := toUnstructured(ClusterRoleBinding("b", "cluster-admin", Groups("g1")...))
	subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
	if len(subjects) != 1 || subjects[0].(map[string]any)["kind"] != rbacv1.GroupKind || subjects[0].(map[string]any)["apiGroup"] != rbacv1.GroupName {
		t.Errorf("subjects: %v", subjects)
	}
	if _, err := toUnstructured(&struct{ runtime.Object }{}); err == nil {
		t.Error("an object client-go does not know was accepted")
	}
}
