package apply

import (
	"context"

	"github.com/arbordev/arbor/inventory"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Labels arbor puts on every object it applies. Prune and Delete act only on
// objects that carry LabelManagedBy=ManagedByValue.
// They are defined once, in package inventory.
const (
	LabelManagedBy = inventory.LabelManagedBy
	ManagedByValue = inventory.ManagedByValue
)

// FieldManager is the server-side apply field manager of every arbor write. It
// never changes: a new name would orphan the fields owned under the old one.
const FieldManager = "arbor"

// ObjectRef and Inventory are the one reference type of arbor, owned by
// package inventory; the aliases keep the engine's API readable.
type (
	ObjectRef = inventory.ObjectRef
	Inventory = inventory.Inventory
)

// RefOf returns the reference of an object as written (its namespace is not defaulted).
func RefOf(u *unstructured.Unstructured) ObjectRef {
	gvk := u.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// Inventory returns the references the objects have once confined to the
// namespace ns, as Apply would write them: what to store as the inventory of
// an environment. It fails on the objects Apply would refuse.
func (e *Engine) Inventory(ctx context.Context, objs []*unstructured.Unstructured, ns string) (Inventory, error) {
	items, err := e.prepare(ctx, objs, ns)
	if err != nil {
		return nil, err
	}
	inv := make(Inventory, len(items))
	for i, it := range items {
		inv[i] = it.ref
	}
	return inv, nil
}
