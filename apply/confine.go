package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ErrConfinement marks an object refused by confinement: a cluster-scoped kind
// or a foreign namespace that Options do not allow.
var ErrConfinement = errors.New("refused by confinement")

// prepare copies the objects, confines them to the namespace ns, labels them as
// arbor's and maps their kinds. Any refused or unknown object fails the whole
// set: nothing is applied from a set that breaks confinement.
func (e *Engine) prepare(ctx context.Context, objs []*unstructured.Unstructured, ns string) ([]*item, error) {
	if ns == "" {
		return nil, errors.New("no environment namespace given")
	}
	crds := crdScopes(objs)
	items := make([]*item, 0, len(objs))
	seen := make(map[ObjectRef]bool, len(objs))
	var errs []error
	for i, o := range objs {
		it, err := e.prepareOne(ctx, i, o, ns, crds)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[it.ref] {
			errs = append(errs, it.errorf("appears more than once"))
			continue
		}
		seen[it.ref] = true
		items = append(items, it)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return items, nil
}

func (e *Engine) prepareOne(ctx context.Context, i int, o *unstructured.Unstructured, ns string, crds map[schema.GroupKind]bool) (*item, error) {
	if o == nil {
		return nil, fmt.Errorf("object %d: is nil", i)
	}
	obj := o.DeepCopy()
	gvk := obj.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" || obj.GetName() == "" {
		return nil, fmt.Errorf("object %d (%s): apiVersion, kind and metadata.name are required", i, RefOf(obj))
	}
	it := &item{idx: i, obj: obj, group: groupOf(gvk.Kind)}
	namespaced, known := crds[gvk.GroupKind()]
	mapping, err := e.mapping(ctx, gvk, !known)
	switch {
	case err == nil:
		it.mapping, namespaced = mapping, mapping.Scope.Name() == meta.RESTScopeNameNamespace
	case meta.IsNoMatchError(err) && known:
		// A custom resource of a CRD in the same set: mapped once the CRD is applied.
	default:
		return nil, fmt.Errorf("%s: unknown kind %s: %w", RefOf(obj), gvk, err)
	}
	if err := e.confine(obj, namespaced, ns); err != nil {
		return nil, err
	}
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelManagedBy] = ManagedByValue
	obj.SetLabels(labels)
	it.ref = RefOf(obj)
	return it, nil
}

// rediscoverEvery spaces the rediscoveries of the API that unknown kinds
// cause, so that a branch naming a kind no cluster serves does not cost a
// discovery on every apply.
const rediscoverEvery = 10 * time.Second

// mapping maps a kind to its resource and scope from the cluster's
// discovery (cached). When the kind is unknown and rediscover is set, it
// reads the discovery again, at most once per rediscoverEvery: the kind may
// be a custom resource whose CRD was installed since the cache was filled,
// and its scope must come from the cluster, not from a guess.
func (e *Engine) mapping(ctx context.Context, gvk schema.GroupVersionKind, rediscover bool) (*meta.RESTMapping, error) {
	if m, ok := e.mappings.Load(gvk); ok {
		return m.(*meta.RESTMapping), nil
	}
	m, err := e.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	if err == nil {
		e.mappings.Store(gvk, m)
	}
	if err == nil || !meta.IsNoMatchError(err) || !rediscover {
		return m, err
	}
	e.mapMu.Lock()
	fresh := time.Since(e.lastReset) < rediscoverEvery
	if !fresh {
		e.resetMapper(ctx)
		e.lastReset = time.Now()
	}
	e.mapMu.Unlock()
	if fresh {
		return nil, err
	}
	return e.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
}

// resetMapper makes the mapper read the API's discovery again and forgets
// the mappings kept from the last one (call with mapMu held).
func (e *Engine) resetMapper(ctx context.Context) {
	e.mapper.ResetWithContext(ctx)
	e.mappings.Clear()
}

// confine puts a namespaced object into ns, or checks the namespace it names;
// a cluster-scoped object must be the environment's Namespace or be allowed.
func (e *Engine) confine(obj *unstructured.Unstructured, namespaced bool, ns string) error {
	if namespaced {
		switch got := obj.GetNamespace(); {
		case got == "":
			obj.SetNamespace(ns)
		case got != ns && !slices.Contains(e.opts.AllowedNamespaces, got):
			return fmt.Errorf("%s: %w: namespace %q is not the environment namespace %q", RefOf(obj), ErrConfinement, got, ns)
		}
		return nil
	}
	obj.SetNamespace("")
	gvk := obj.GroupVersionKind()
	if gvk.Group == "" && gvk.Kind == "Namespace" && obj.GetName() == ns {
		return nil
	}
	if !e.opts.AllowClusterScoped {
		return fmt.Errorf("%s: %w: %s is cluster-scoped", RefOf(obj), ErrConfinement, gvk.Kind)
	}
	return nil
}

// crdScopes maps the kinds defined by CustomResourceDefinitions in objs to
// whether they are namespaced.
func crdScopes(objs []*unstructured.Unstructured) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o == nil || o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		out[schema.GroupKind{Group: group, Kind: kind}] = scope != "Cluster"
	}
	return out
}

// mapDeferred maps the items whose kinds were unknown before their CRDs were
// applied, rediscovering the API once.
func (e *Engine) mapDeferred(ctx context.Context, items []*item) error {
	var errs []error
	reset := false
	for _, it := range items {
		if it.mapping != nil {
			continue
		}
		if !reset {
			e.mapMu.Lock()
			e.resetMapper(ctx)
			e.mapMu.Unlock()
			reset = true
		}
		gvk := it.obj.GroupVersionKind()
		m, err := e.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
		if err != nil {
			errs = append(errs, it.errorf("kind %s is still unknown after applying its CustomResourceDefinition: %w", gvk, err))
			continue
		}
		it.mapping = m
	}
	return errors.Join(errs...)
}
