// Package inventory names the objects of an environment: the ObjectRef that
// render emits, the engine (apply) writes and prunes, and the record (state)
// stores. It imports nothing of arbor and nothing of client-go, so render stays
// pure and apply does not depend on render.
package inventory

import "sort"

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

// Less orders references by group, kind, namespace and name.
func Less(a, b ObjectRef) bool {
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
	sort.Slice(out, func(i, j int) bool { return Less(out[i], out[j]) })
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
