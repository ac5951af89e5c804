package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
)

// Applied is one object Apply sent.
type Applied struct {
	Kind      string
	Namespace string
	Name      string
	// Changed is false when the object was already as applied: its
	// resourceVersion did not move.
	Changed bool
}

func (a Applied) String() string {
	if a.Namespace == "" {
		return a.Kind + " " + a.Name
	}
	return a.Kind + " " + a.Namespace + "/" + a.Name
}

// Decode splits multi-document YAML (or JSON) into objects, skipping empty
// documents. Every object needs apiVersion, kind and metadata.name.
func Decode(docs []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(docs), 4096)
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("document %d: apiVersion, kind and metadata.name are required", i)
		}
		out = append(out, u)
	}
}

// ManagedByLabel marks every object Apply sends, with the value "kforge".
// It also gives kforge a field of its own in objects that would otherwise
// carry only a name (a bare Namespace): an apply owning no field leaves no
// managed-fields entry, and the next apply would then rewrite the object.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// Apply sends every object of docs with server-side apply under the field
// manager "kforge", forcing ownership of the fields it sets, and labels
// each one with ManagedByLabel. Objects are applied in order, so a
// Namespace or CRD goes before what uses it. Applying the same documents
// again changes nothing on the server.
func (c *Client) Apply(ctx context.Context, docs []byte) ([]Applied, error) {
	objs, err := Decode(docs)
	if err != nil {
		return nil, err
	}
	out := make([]Applied, 0, len(objs))
	for _, u := range objs {
		a, err := c.applyOne(ctx, u)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (c *Client) applyOne(ctx context.Context, u *unstructured.Unstructured) (Applied, error) {
	a := Applied{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	if _, ok := labels[ManagedByLabel]; !ok {
		labels[ManagedByLabel] = FieldManager
		u.SetLabels(labels)
	}
	gvk := u.GroupVersionKind()
	m, err := c.mapping(gvk)
	if err != nil {
		return a, fmt.Errorf("apply %s: %w", a, err)
	}
	var ri dynamic.ResourceInterface = c.Dynamic.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if a.Namespace == "" {
			a.Namespace = metav1.NamespaceDefault
			u.SetNamespace(a.Namespace)
		}
		ri = c.Dynamic.Resource(m.Resource).Namespace(a.Namespace)
	} else if a.Namespace != "" {
		return a, fmt.Errorf("apply %s: %s is not namespaced", a, gvk.Kind)
	}
	before := ""
	if cur, err := ri.Get(ctx, a.Name, metav1.GetOptions{}); err == nil {
		before = cur.GetResourceVersion()
	} else if !apierrors.IsNotFound(err) {
		return a, fmt.Errorf("apply %s: %w", a, err)
	}
	got, err := ri.Apply(ctx, a.Name, u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return a, fmt.Errorf("apply %s: %w", a, err)
	}
	a.Changed = got.GetResourceVersion() != before
	return a, nil
}

// mapping finds the resource of a kind through discovery, refreshing the
// cached discovery once when the kind is unknown (a CRD applied just
// before).
func (c *Client) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("the API server at %s does not serve %s", c.Server(), strings.TrimPrefix(gvk.GroupVersion().String()+" "+gvk.Kind, "/"))
		}
		return nil, err
	}
	return m, nil
}

// ApplyObjects applies typed objects, as Apply does documents. Each
// object's apiVersion and kind come from client-go's scheme, so callers
// need not set TypeMeta.
func (c *Client) ApplyObjects(ctx context.Context, objs ...runtime.Object) ([]Applied, error) {
	out := make([]Applied, 0, len(objs))
	for _, o := range objs {
		u, err := toUnstructured(o)
		if err != nil {
			return out, err
		}
		a, err := c.applyOne(ctx, u)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

func toUnstructured(o runtime.Object) (*unstructured.Unstructured, error) {
	gvks, _, err := scheme.Scheme.ObjectKinds(o)
	if err != nil || len(gvks) == 0 {
		return nil, fmt.Errorf("apply %T: not a kind client-go knows: %v", o, err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("apply %T: %w", o, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvks[0])
	// A typed object's zero creationTimestamp converts to null, which the
	// server ignores; status is the server's.
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}
