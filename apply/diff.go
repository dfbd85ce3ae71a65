package apply

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Diff shows what Apply would do, writing nothing: each existing object is
// compared with a server-side apply dry-run of its desired state, both
// normalized (status, managed fields and other server-generated fields left
// out) so that an unchanged object shows no diff. New objects are validated by
// a dry-run create, except inside a namespace that does not exist yet. Secret
// values are masked.
//
// The ChangeSet has one Change per object, with Failed for objects whose
// dry-run was refused; err joins those failures.
func (e *Engine) Diff(ctx context.Context, objs []*unstructured.Unstructured, opts ApplyOptions) (*ChangeSet, error) {
	items, err := e.prepare(ctx, objs, opts.Namespace)
	if err != nil {
		return nil, err
	}
	cs := &ChangeSet{Changes: make([]Change, len(objs))}
	absent := map[string]bool{} // namespaces that do not exist yet
	var errs []error
	for _, group := range groups(items) {
		err := e.forEach(ctx, group, func(ctx context.Context, it *item) error {
			ch, err := e.diffOne(ctx, it, absent[it.ref.Namespace])
			cs.Changes[it.idx] = ch
			return err
		})
		for _, it := range group {
			if it.ref.Kind == "Namespace" && it.ref.Group == "" && cs.Changes[it.idx].Action == Created {
				absent[it.ref.Name] = true
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return cs, errors.Join(errs...)
}

func (e *Engine) diffOne(ctx context.Context, it *item, inAbsentNamespace bool) (Change, error) {
	if it.mapping == nil {
		ch := createdChange(it)
		ch.Reason = "its CustomResourceDefinition is not installed yet"
		return ch, nil
	}
	if inAbsentNamespace {
		return createdChange(it), nil
	}
	live, err := e.get(ctx, it)
	if err != nil {
		return failed(it, err)
	}
	if live != nil {
		ch, err := e.plan(ctx, it, live)
		if err != nil {
			return failed(it, err)
		}
		return ch, nil
	}
	if _, err := e.resource(it).Apply(ctx, it.ref.Name, it.obj, e.applyOptions(true)); err != nil {
		return failed(it, e.applyError(it, err))
	}
	return createdChange(it), nil
}
