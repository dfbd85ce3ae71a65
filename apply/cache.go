package apply

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"maps"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// watchCache keeps a watch-fed copy of arbor's objects (those with arbor's
// managed-by label), one informer per resource, started on first use. With
// it, Apply decides "unchanged" without a request: an object whose live
// resourceVersion and desired content are both what they were when the
// engine last confirmed the object with the API server cannot have changed.
// Anything else — a new object, a different desired object, any write to the
// live object by anyone — goes the usual way (GET, dry-run).
type watchCache struct {
	factory dynamicinformer.DynamicSharedInformerFactory
	stop    chan struct{}

	mu        sync.Mutex
	informers map[schema.GroupVersionResource]cache.SharedIndexInformer

	confirmed sync.Map // cacheKey → confirmation
	onDrift   func(ObjectRef)
}

// drifted calls onDrift for a deleted object (cur nil) or one whose spec or
// metadata changed, unless the engine itself confirmed that version. (A
// watch event may outrun the confirmation of arbor's own write: then onDrift
// is called once too often, and the re-apply finds nothing to change.)
func (c *watchCache) drifted(gvr schema.GroupVersionResource, old, cur any) {
	if d, ok := old.(cache.DeletedFinalStateUnknown); ok {
		old = d.Obj
	}
	o, ok := old.(*unstructured.Unstructured)
	if !ok {
		return
	}
	if cur != nil {
		n, ok := cur.(*unstructured.Unstructured)
		if !ok || !specChanged(o, n) || c.confirmedVersion(gvr, n) {
			return
		}
	}
	c.onDrift(RefOf(o))
}

// specChanged reports whether what arbor applies may have changed between two
// versions of an object: its generation (spec), labels or annotations, or,
// for kinds without a generation, any change.
func specChanged(old, cur *unstructured.Unstructured) bool {
	if old.GetResourceVersion() == cur.GetResourceVersion() {
		return false
	}
	if cur.GetGeneration() == 0 {
		return true
	}
	return old.GetGeneration() != cur.GetGeneration() ||
		!maps.Equal(old.GetLabels(), cur.GetLabels()) || !maps.Equal(old.GetAnnotations(), cur.GetAnnotations())
}

// confirmedVersion reports whether the engine confirmed exactly this version.
func (c *watchCache) confirmedVersion(gvr schema.GroupVersionResource, u *unstructured.Unstructured) bool {
	v, ok := c.confirmed.Load(cacheKey{gvr: gvr, namespace: u.GetNamespace(), name: u.GetName()})
	return ok && v.(confirmation).resourceVersion == u.GetResourceVersion()
}

// confirmation is an object as the engine last confirmed it with the server.
type confirmation struct {
	desired         [sha256.Size]byte // hash of the desired object sent
	resourceVersion string            // the live object's version then
}

type cacheKey struct {
	gvr       schema.GroupVersionResource
	namespace string
	name      string
}

func (e *Engine) startCache() {
	sel := LabelManagedBy + "=" + ManagedByValue
	e.cache = &watchCache{
		factory: dynamicinformer.NewFilteredDynamicSharedInformerFactory(e.dyn, 0, metav1.NamespaceAll,
			func(o *metav1.ListOptions) { o.LabelSelector = sel }),
		stop:      make(chan struct{}),
		informers: map[schema.GroupVersionResource]cache.SharedIndexInformer{},
		onDrift:   e.opts.OnDrift,
	}
}

// Close stops the engine's watches (Options.WatchCache). The engine must not
// be used afterwards.
func (e *Engine) Close() {
	if e.cache != nil {
		close(e.cache.stop)
		e.cache.factory.Shutdown()
	}
}

// informer returns the synced informer of gvr, starting it on first use; nil
// when it cannot sync before ctx ends.
func (c *watchCache) informer(ctx context.Context, gvr schema.GroupVersionResource) cache.SharedIndexInformer {
	c.mu.Lock()
	inf, ok := c.informers[gvr]
	if !ok {
		inf = c.factory.ForResource(gvr).Informer()
		// The cache only compares versions: drop what takes memory.
		_ = inf.SetTransform(func(o any) (any, error) {
			if u, ok := o.(*unstructured.Unstructured); ok {
				u.SetManagedFields(nil)
			}
			return o, nil
		})
		if c.onDrift != nil {
			_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				UpdateFunc: func(old, cur any) { c.drifted(gvr, old, cur) },
				DeleteFunc: func(o any) { c.drifted(gvr, o, nil) },
			})
		}
		c.informers[gvr] = inf
		go inf.Run(c.stop)
	}
	c.mu.Unlock()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil
	}
	return inf
}

func keyOf(it *item) cacheKey {
	return cacheKey{gvr: it.mapping.Resource, namespace: it.ref.Namespace, name: it.ref.Name}
}

func desiredHash(it *item) [sha256.Size]byte {
	b, _ := json.Marshal(it.obj.Object) // maps marshal with sorted keys: stable
	return sha256.Sum256(b)
}

// unchanged reports whether the cache proves that applying it would change
// nothing, without a request.
func (e *Engine) unchanged(ctx context.Context, it *item) bool {
	if e.cache == nil {
		return false
	}
	v, ok := e.cache.confirmed.Load(keyOf(it))
	if !ok {
		return false
	}
	inf := e.cache.informer(ctx, it.mapping.Resource)
	if inf == nil {
		return false
	}
	key := it.ref.Name
	if it.ref.Namespace != "" {
		key = it.ref.Namespace + "/" + key
	}
	o, exists, err := inf.GetStore().GetByKey(key)
	if err != nil || !exists {
		return false
	}
	live, ok := o.(*unstructured.Unstructured)
	c := v.(confirmation)
	return ok && live.GetResourceVersion() == c.resourceVersion && c.desired == desiredHash(it)
}

// confirm records that the live object at resourceVersion is what applying
// it leads to.
func (e *Engine) confirm(ctx context.Context, it *item, resourceVersion string) {
	if e.cache == nil || resourceVersion == "" {
		return
	}
	e.cache.informer(ctx, it.mapping.Resource) // start watching this resource
	e.cache.confirmed.Store(keyOf(it), confirmation{desired: desiredHash(it), resourceVersion: resourceVersion})
}

// forget drops what the engine confirmed about an object it deleted.
func (e *Engine) forget(it *item) {
	if e.cache != nil && it.mapping != nil {
		e.cache.confirmed.Delete(keyOf(it))
	}
}
