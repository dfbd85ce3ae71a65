package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// DeleteOptions configure Delete.
type DeleteOptions struct {
	// Namespace is the environment namespace.
	Namespace string
	// Timeout bounds the wait for everything to be gone (default two minutes).
	// When it passes, Delete returns an error naming the finalizers still
	// holding the namespace and its objects.
	Timeout time.Duration
}

// Prune deletes the objects of the previous inventory that are not in the
// desired set. Before deleting, each object is read live: one that is gone is
// skipped, and one without arbor's managed-by label is never deleted (Skipped,
// with the reason). The inventory is confined like the objects of Apply, so a
// tampered inventory cannot reach outside the environment. Protected
// namespaces are never deleted. Deletion runs in reverse kind order.
func (e *Engine) Prune(ctx context.Context, previous Inventory, desired []*unstructured.Unstructured, opts ApplyOptions) (*ChangeSet, error) {
	items, err := e.prepare(ctx, desired, opts.Namespace)
	if err != nil {
		return nil, err
	}
	keep := make(map[ObjectRef]bool, len(items))
	for _, it := range items {
		keep[it.ref] = true
	}
	var gone Inventory
	for _, r := range previous.Sorted() {
		if !keep[r] {
			gone = append(gone, r)
		}
	}
	return e.deleteRefs(ctx, gone, opts.Namespace)
}

// Delete removes an environment: the objects of its inventory and its
// namespace. The namespace is deleted only when it carries arbor's label and
// is not protected; objects outside it are deleted one by one, and those inside
// go with it. When the namespace is not arbor's, every inventory object is
// deleted one by one and the namespace is left (Skipped). Delete then waits,
// within opts.Timeout, for everything to be gone; on timeout the error names
// the finalizers still holding the namespace and the objects left.
func (e *Engine) Delete(ctx context.Context, inv Inventory, opts DeleteOptions) (*ChangeSet, error) {
	if opts.Namespace == "" {
		return nil, errors.New("no environment namespace given")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	nsRef := ObjectRef{Kind: "Namespace", Name: opts.Namespace}
	nsItem, err := e.itemFor(ctx, nsRef)
	if err != nil {
		return nil, err
	}
	live, err := e.get(ctx, nsItem)
	if err != nil {
		return nil, err
	}
	owned := live != nil && managed(live) && !e.protected(opts.Namespace)
	var individually Inventory
	for _, r := range inv.Sorted() {
		if r == nsRef || (owned && r.Namespace == opts.Namespace) {
			continue
		}
		individually = append(individually, r)
	}
	cs, err := e.deleteRefs(ctx, individually, opts.Namespace)
	if err != nil {
		return cs, err
	}
	switch {
	case live == nil:
		return cs, nil
	case !owned:
		reason := "not managed by arbor"
		if e.protected(opts.Namespace) {
			reason = "protected namespace"
		}
		cs.Changes = append(cs.Changes, Change{Ref: nsRef, Action: Skipped, Reason: reason})
		return cs, nil
	}
	if err := e.deleteLive(ctx, nsItem, live); err != nil {
		return cs, err
	}
	cs.Changes = append(cs.Changes, Change{Ref: nsRef, Action: Deleted})
	if err := e.waitGone(ctx, nsItem, live.GetUID(), opts.Timeout); err != nil {
		return cs, e.stuck(ctx, nsItem, inv, opts.Timeout)
	}
	return cs, nil
}

// deleteRefs deletes the managed objects among refs, in reverse kind order,
// each group with bounded concurrency, and waits for none: the API server
// accepted each deletion.
func (e *Engine) deleteRefs(ctx context.Context, refs Inventory, ns string) (*ChangeSet, error) {
	cs := &ChangeSet{}
	items := make([]*item, 0, len(refs))
	var errs []error
	for _, r := range refs {
		if err := e.confineRef(r, ns); err != nil {
			errs = append(errs, err)
			continue
		}
		it, err := e.itemFor(ctx, r)
		if meta.IsNoMatchError(err) {
			cs.Changes = append(cs.Changes, Change{Ref: r, Action: Skipped, Reason: "kind no longer served"})
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		it.idx = len(cs.Changes)
		cs.Changes = append(cs.Changes, Change{Ref: r})
		items = append(items, it)
	}
	if err := errors.Join(errs...); err != nil {
		return cs, err
	}
	gs := groups(items)
	slices.Reverse(gs)
	for _, group := range gs {
		err := e.forEach(ctx, group, func(ctx context.Context, it *item) error {
			ch, err := e.deleteOne(ctx, it)
			cs.Changes[it.idx] = ch
			return err
		})
		if err != nil {
			return cs, err
		}
	}
	return cs, nil
}

// deleteOne deletes one object after checking it live: only an object that
// exists, carries arbor's label and is not a protected namespace.
func (e *Engine) deleteOne(ctx context.Context, it *item) (Change, error) {
	live, err := e.get(ctx, it)
	if err != nil {
		return failed(it, err)
	}
	switch {
	case live == nil:
		return Change{Ref: it.ref, Action: Skipped, Reason: "already gone"}, nil
	case !managed(live):
		return Change{Ref: it.ref, Action: Skipped, Reason: "not managed by arbor"}, nil
	case it.ref.Kind == "Namespace" && it.ref.Group == "" && e.protected(it.ref.Name):
		return Change{Ref: it.ref, Action: Skipped, Reason: "protected namespace"}, nil
	}
	if err := e.deleteLive(ctx, it, live); err != nil {
		return failed(it, err)
	}
	return Change{Ref: it.ref, Action: Deleted}, nil
}

// confineRef applies confinement to an inventory entry.
func (e *Engine) confineRef(r ObjectRef, ns string) error {
	switch {
	case r.Namespace == ns, slices.Contains(e.opts.AllowedNamespaces, r.Namespace) && r.Namespace != "":
		return nil
	case r.Namespace != "":
		return fmt.Errorf("%s: %w: namespace %q is not the environment namespace %q", r, ErrConfinement, r.Namespace, ns)
	case r.Group == "" && r.Kind == "Namespace" && r.Name == ns, e.opts.AllowClusterScoped:
		return nil
	}
	return fmt.Errorf("%s: %w: cluster-scoped", r, ErrConfinement)
}

// itemFor maps an inventory entry to an item (without a desired object).
func (e *Engine) itemFor(ctx context.Context, r ObjectRef) (*item, error) {
	m, err := e.mapper.RESTMappingWithContext(ctx, schema.GroupKind{Group: r.Group, Kind: r.Kind})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	r2 := r
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		r2.Namespace = ""
	}
	return &item{ref: r2, mapping: m, group: groupOf(r.Kind)}, nil
}

// stuck explains why a namespace is still terminating: its finalizers, its
// conditions, and the inventory objects left with their finalizers.
func (e *Engine) stuck(ctx context.Context, nsItem *item, inv Inventory, timeout time.Duration) error {
	// The wait's ctx may be spent; the explanation gets a short budget of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var why []string
	if ns, err := e.get(ctx, nsItem); err == nil && ns != nil {
		if f := ns.GetFinalizers(); len(f) > 0 {
			why = append(why, fmt.Sprintf("namespace finalizers %v", f))
		}
		if f, _, _ := unstructured.NestedStringSlice(ns.Object, "spec", "finalizers"); len(f) > 0 {
			why = append(why, fmt.Sprintf("namespace spec.finalizers %v", f))
		}
		conds, _, _ := unstructured.NestedSlice(ns.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["status"] == "True" {
				why = append(why, fmt.Sprintf("%v: %v", m["type"], m["message"]))
			}
		}
	}
	for _, r := range inv.Sorted() {
		if r.Namespace != nsItem.ref.Name {
			continue
		}
		it, err := e.itemFor(ctx, r)
		if err != nil {
			continue
		}
		if u, err := e.get(ctx, it); err == nil && u != nil {
			why = append(why, fmt.Sprintf("%s held by finalizers %v", r, u.GetFinalizers()))
		}
	}
	return fmt.Errorf("%s: still terminating after %s: %s", nsItem.ref, timeout, strings.Join(why, "; "))
}

// Recreate deletes the object ref when arbor manages it and stale says its
// live state must be made anew, and waits (within opts.Timeout) until it is
// gone, so that the next Apply creates it fresh: a failed Job run, whose
// spec cannot change in place, is deleted so that it runs again. It reports
// whether it deleted the object. The ref is confined like an inventory.
func (e *Engine) Recreate(ctx context.Context, ref ObjectRef, opts DeleteOptions, stale func(live *unstructured.Unstructured) bool) (bool, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if err := e.confineRef(ref, opts.Namespace); err != nil {
		return false, err
	}
	it, err := e.itemFor(ctx, ref)
	if err != nil {
		return false, err
	}
	live, err := e.get(ctx, it)
	if err != nil || live == nil || !managed(live) || !stale(live) {
		return false, err
	}
	if err := e.deleteLive(ctx, it, live); err != nil {
		return false, err
	}
	if err := e.waitGone(ctx, it, live.GetUID(), opts.Timeout); err != nil {
		return true, it.errorf("the deleted object is not gone: %w", err)
	}
	return true, nil
}
