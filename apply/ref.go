package apply

import (
	"context"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Labels arbor puts on every object it applies. Prune and Delete act only on
// objects that carry LabelManagedBy=ManagedByValue.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "arbor"
)

// FieldManager is the server-side apply field manager of every arbor write. It
// never changes: a new name would orphan the fields owned under the old one.
const FieldManager = "arbor"

// ObjectRef names one object by group, kind, namespace and name. The version is
// left out on purpose: an inventory must survive API version upgrades.
type ObjectRef struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String renders the reference as Kind/namespace/name (Kind/name when cluster-scoped).
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// RefOf returns the reference of an object as written (its namespace is not defaulted).
func RefOf(u *unstructured.Unstructured) ObjectRef {
	gvk := u.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// Inventory is the list of every object applied to an environment. Prune
// deletes what a previous inventory holds and the desired set does not.
type Inventory []ObjectRef

// Sorted returns a copy of the inventory in a stable order, without duplicates.
func (inv Inventory) Sorted() Inventory {
	seen := make(map[ObjectRef]bool, len(inv))
	out := make(Inventory, 0, len(inv))
	for _, r := range inv {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return lessRef(out[i], out[j]) })
	return out
}

// Contains reports whether the inventory holds r.
func (inv Inventory) Contains(r ObjectRef) bool {
	for _, x := range inv {
		if x == r {
			return true
		}
	}
	return false
}

func lessRef(a, b ObjectRef) bool {
	if a.Group != b.Group {
		return a.Group < b.Group
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
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
