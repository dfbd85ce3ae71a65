package apply

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ApplyOptions say where one Apply or Diff call lands.
type ApplyOptions struct {
	// Namespace is the environment namespace: namespaced objects without a
	// namespace are put in it, and others must name it (or an allowed one).
	Namespace string
	// RecreateTimeout bounds the wait for a deleted object to be gone before it
	// is created again (default one minute).
	RecreateTimeout time.Duration
	// NewNamespace tells Apply that the caller has just created Namespace
	// (an earlier Apply reported it Created) and applied nothing else into
	// it: its objects are created without a read or a dry-run, as they are
	// when one call creates the namespace and its contents, and the
	// Namespace object itself, if given again, is left as it is.
	NewNamespace bool
	// NoDiff leaves the Diff of created objects empty, sparing the YAML
	// rendering of every new object to callers that never show it.
	NoDiff bool
	// Owner, when set, is whose environment this is (install, app, env): an
	// existing Namespace owned by anyone else is refused with an
	// *OwnedByOtherError, and nothing is written into it. (Objects inside
	// the namespace need only arbor's label: an app's imports put other
	// apps' objects there.)
	Owner Owner
	// ClaimFirst tells Apply that the caller has no sign of the
	// environment's Namespace (its cache of arbor's namespaces does not
	// hold it): with Owner set, the Namespace is claimed with a create
	// straight away and read only when that create finds it exists, one
	// request fewer for a new environment. The create never changes an
	// existing namespace, so the owner check is the same.
	ClaimFirst bool
}

// Apply brings the objects into the cluster with server-side apply, group by
// group in kind order. An object that already exists is written only when a
// dry-run apply shows it would change, so applying an unchanged set sends no
// write at all. Objects of a namespace created by this call are known to be
// new and are applied without the dry-run.
//
// When a group fails, later groups are not attempted and their objects are
// reported as skipped. The returned ChangeSet is always complete, one Change
// per object in the order given, also when err is not nil.
func (e *Engine) Apply(ctx context.Context, objs []*unstructured.Unstructured, opts ApplyOptions) (*ChangeSet, error) {
	items, err := e.prepare(ctx, objs, opts.Namespace)
	if err != nil {
		return nil, err
	}
	cs := &ChangeSet{Changes: make([]Change, len(objs))}
	for _, it := range items {
		cs.Changes[it.idx] = Change{Ref: it.ref, Action: Skipped, Reason: "not attempted: an earlier group failed"}
	}
	fresh := map[string]bool{} // namespaces this call (or the caller) created: everything in them is new
	if opts.NewNamespace && opts.Namespace != "" {
		fresh[opts.Namespace] = true
	}
	for _, group := range groups(items) {
		if err := e.mapDeferred(ctx, group); err != nil {
			return cs, err
		}
		err := e.forEach(ctx, group, func(ctx context.Context, it *item) error {
			ch, err := e.applyOne(ctx, it, fresh[it.ref.Namespace], opts)
			cs.Changes[it.idx] = ch
			return err
		})
		for _, it := range group {
			if it.ref.Kind == "Namespace" && it.ref.Group == "" && cs.Changes[it.idx].Action == Created {
				fresh[it.ref.Name] = true
			}
		}
		if err != nil {
			return cs, err
		}
		if err := e.establishCRDs(ctx, group); err != nil {
			return cs, err
		}
	}
	return cs, nil
}

// applyOne applies one object and says what happened to it.
func (e *Engine) applyOne(ctx context.Context, it *item, knownNew bool, opts ApplyOptions) (Change, error) {
	if opts.NewNamespace && it.ref.Group == "" && it.ref.Kind == "Namespace" && it.ref.Name == opts.Namespace {
		return Change{Ref: it.ref, Action: Unchanged}, nil // the caller has just created it
	}
	isNamespace := it.ref.Kind == "Namespace" && it.ref.Group == ""
	claimFirst := opts.ClaimFirst && isNamespace && opts.Owner != nil && it.ref.Name == opts.Namespace
	var live *unstructured.Unstructured
	if !knownNew && !claimFirst {
		var err error
		if live, err = e.get(ctx, it); err != nil {
			return failed(it, err)
		}
	}
	if live == nil && isNamespace && opts.Owner != nil {
		// Claim the namespace with a create, not an apply: of two callers
		// racing for one name exactly one creates it, and the other reads
		// the winner's owner below instead of patching its own over it.
		out, err := e.claim(ctx, it)
		if err != nil {
			return failed(it, err)
		}
		if out != nil {
			return e.created(it, opts.NoDiff).of(out), nil
		}
		if live, err = e.get(ctx, it); err != nil {
			return failed(it, err)
		}
	}
	if live == nil {
		return e.create(ctx, it, opts.NoDiff)
	}
	if isNamespace {
		if err := CheckOwner(it.ref, live.GetLabels(), opts.Owner); err != nil {
			return failed(it, err)
		}
	}
	plan, err := e.plan(ctx, it, live)
	if err != nil {
		return failed(it, err)
	}
	switch plan.Action {
	case Unchanged:
		return plan.of(live), nil
	case Recreated:
		return e.recreate(ctx, it, live, plan, opts.RecreateTimeout)
	}
	out, err := e.write(ctx, it)
	if err != nil {
		return failed(it, err)
	}
	return plan.of(out), nil
}

// write applies the object for real and returns the server's answer.
func (e *Engine) write(ctx context.Context, it *item) (*unstructured.Unstructured, error) {
	out, err := e.resource(it).Apply(ctx, it.ref.Name, it.obj, e.applyOptions(false))
	if err != nil {
		return nil, e.applyError(it, err)
	}
	return out, nil
}

// create applies an object that does not exist yet.
func (e *Engine) create(ctx context.Context, it *item, noDiff bool) (Change, error) {
	out, err := e.write(ctx, it)
	if err != nil {
		return failed(it, err)
	}
	return e.created(it, noDiff).of(out), nil
}

func (e *Engine) created(it *item, noDiff bool) Change {
	if noDiff {
		return Change{Ref: it.ref, Action: Created}
	}
	return createdChange(it)
}

// claim creates the namespace with a plain create, which fails when it
// exists (out is nil then), and then applies it as usual, returning the
// server's answer to the apply. The create
// holds only the name and the owner labels: fields a create sets belong to
// an Update entry of arbor's field manager, which a later apply that changes
// them would conflict with; the owner labels never change.
func (e *Engine) claim(ctx context.Context, it *item) (*unstructured.Unstructured, error) {
	skeleton := &unstructured.Unstructured{}
	skeleton.SetGroupVersionKind(it.obj.GroupVersionKind())
	skeleton.SetName(it.obj.GetName())
	labels := map[string]string{LabelManagedBy: ManagedByValue}
	for k, v := range OwnerOf(it.obj) {
		labels[k] = v
	}
	skeleton.SetLabels(labels)
	_, err := e.resource(it).Create(ctx, skeleton, metav1.CreateOptions{FieldManager: FieldManager})
	switch {
	case apierrors.IsAlreadyExists(err):
		return nil, nil
	case err != nil:
		return nil, e.applyError(it, err)
	}
	return e.write(ctx, it)
}

func createdChange(it *item) Change {
	after := normalize(it.obj)
	maskSecrets(nil, after)
	return Change{Ref: it.ref, Action: Created, Diff: objectDiff(it.ref, nil, after)}
}

// plan compares live with a dry-run apply of the desired object and returns the
// change it would make: unchanged, configured, or recreated when an immutable
// field changes on an object arbor may recreate.
func (e *Engine) plan(ctx context.Context, it *item, live *unstructured.Unstructured) (Change, error) {
	if !managed(live) {
		return Change{}, it.errorf("%w", ErrNotManaged)
	}
	dry, err := e.resource(it).Apply(ctx, it.ref.Name, it.obj, e.applyOptions(true))
	if err != nil && isImmutable(err) {
		return e.planRecreate(it, live, err)
	}
	if err != nil {
		return Change{}, e.applyError(it, err)
	}
	before, after := normalize(live), normalize(dry)
	if reflect.DeepEqual(before, after) {
		return Change{Ref: it.ref, Action: Unchanged}, nil
	}
	maskSecrets(before, after)
	return Change{Ref: it.ref, Action: Configured, Fields: changedFields(before, after), Diff: objectDiff(it.ref, before, after)}, nil
}

func (e *Engine) planRecreate(it *item, live *unstructured.Unstructured, cause error) (Change, error) {
	ie := &ImmutableError{Ref: it.ref, Fields: immutableFields(cause), Err: cause}
	if !recreatable[it.ref.Kind] {
		return Change{}, fmt.Errorf("%w; arbor does not recreate a %s (its data would be lost): delete it by hand to proceed", ie, it.ref.Kind)
	}
	// The live object carries server defaults the desired one lacks: compare
	// only the fields the desired object sets.
	after := normalize(it.obj)
	before := project(normalize(live), after).(map[string]any)
	maskSecrets(before, after)
	return Change{
		Ref: it.ref, Action: Recreated, Fields: changedFields(before, after),
		Diff:   objectDiff(it.ref, before, after),
		Reason: "immutable fields changed: " + strings.Join(ie.Fields, ", "),
	}, nil
}

// recreate deletes live (only that very object, by UID), waits until it is
// gone and creates the desired object.
func (e *Engine) recreate(ctx context.Context, it *item, live *unstructured.Unstructured, plan Change, timeout time.Duration) (Change, error) {
	if timeout <= 0 {
		timeout = time.Minute
	}
	if err := e.deleteLive(ctx, it, live); err != nil {
		return failed(it, err)
	}
	if err := e.waitGone(ctx, it, live.GetUID(), timeout); err != nil {
		return failed(it, err)
	}
	out, err := e.write(ctx, it)
	if err != nil {
		return failed(it, err)
	}
	return plan.of(out), nil
}

// deleteLive deletes exactly the live object (UID precondition), letting the
// garbage collector remove its dependents in the background.
func (e *Engine) deleteLive(ctx context.Context, it *item, live *unstructured.Unstructured) error {
	uid := live.GetUID()
	policy := metav1.DeletePropagationBackground
	err := e.resource(it).Delete(ctx, it.ref.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: &policy,
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return it.errorf("delete: %w", err)
	}
	return nil
}

// get reads the live object; a missing object is (nil, nil).
func (e *Engine) get(ctx context.Context, it *item) (*unstructured.Unstructured, error) {
	live, err := e.resource(it).Get(ctx, it.ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, it.errorf("read live state: %w", err)
	}
	return live, nil
}

func (e *Engine) applyOptions(dryRun bool) metav1.ApplyOptions {
	o := metav1.ApplyOptions{FieldManager: FieldManager, Force: e.opts.Force}
	if dryRun {
		o.DryRun = []string{metav1.DryRunAll}
	}
	return o
}

// applyError names the object and, for a conflict, the other managers and fields.
func (e *Engine) applyError(it *item, err error) error {
	if ce, ok := asConflict(it.ref, err); ok {
		return ce
	}
	if isImmutable(err) {
		return &ImmutableError{Ref: it.ref, Fields: immutableFields(err), Err: err}
	}
	return it.errorf("apply: %w", err)
}

func failed(it *item, err error) (Change, error) {
	return Change{Ref: it.ref, Action: Failed, Reason: err.Error()}, err
}
