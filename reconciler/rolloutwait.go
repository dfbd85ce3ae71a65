package reconciler

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/workflow"
)

// rolloutFallback is how long a Deployment the last Apply wrote may be
// missing from the watch (or show an older version) before the wait asks
// the API server itself: the watch lags by moments, never by this much
// unless the object was deleted or replaced meanwhile.
const rolloutFallback = 20 * time.Second

// rolloutRecheck is how often a waiting rollout looks at the watch without
// an event (a safety net: every change of the Deployment wakes it).
const rolloutRecheck = 2 * time.Second

// cachedRollouts is the workflow engine with one change: a wait for a
// Deployment that the run's Apply has just written or read is served from
// the daemon's watch of Deployments (the diagnostics informer, which keeps
// their status counts) instead of a list and a watch of its own. At a
// thousand new environments that is a thousand requests, and as many
// watches open at once on the API server, fewer. The watch must show the
// very object Apply answered with (same UID, at least its generation)
// before its readiness counts, so an older version still in the cache is
// never taken for the new one; anything else is waited for by the engine.
type cachedRollouts struct {
	workflow.Engine
	deploys toolscache.SharedIndexInformer

	mu      sync.Mutex
	expect  map[string]written                // namespace/name → what Apply wrote
	waiters map[string]map[chan struct{}]bool // namespace/name → rollouts waiting
}

// written is a Deployment as Apply's write (or read) answered it.
type written struct {
	uid        types.UID
	generation int64
}

func newCachedRollouts(eng workflow.Engine, deploys toolscache.SharedIndexInformer) (*cachedRollouts, error) {
	c := &cachedRollouts{Engine: eng, deploys: deploys, expect: map[string]written{}, waiters: map[string]map[chan struct{}]bool{}}
	wake := func(obj any) {
		if m, err := metaOf(obj); err == nil {
			c.wake(m.GetNamespace()+"/"+m.GetName(), false)
		}
	}
	gone := func(obj any) {
		if m, err := metaOf(obj); err == nil {
			c.wake(m.GetNamespace()+"/"+m.GetName(), true)
		}
	}
	if _, err := deploys.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: wake, UpdateFunc: func(_, cur any) { wake(cur) }, DeleteFunc: gone,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Apply applies through the engine and remembers the Deployments it wrote
// or read, for Wait.
func (c *cachedRollouts) Apply(ctx context.Context, objs []*unstructured.Unstructured, opts apply.ApplyOptions) (*apply.ChangeSet, error) {
	cs, err := c.Engine.Apply(ctx, objs, opts)
	if cs != nil {
		c.mu.Lock()
		for _, ch := range cs.Changes {
			if ch.Ref.Group == "apps" && ch.Ref.Kind == "Deployment" {
				key := ch.Ref.Namespace + "/" + ch.Ref.Name
				if ch.UID != "" && ch.Action != apply.Failed && ch.Action != apply.Skipped {
					c.expect[key] = written{uid: ch.UID, generation: ch.Generation}
				} else {
					delete(c.expect, key)
				}
			}
		}
		c.mu.Unlock()
	}
	return cs, err
}

// Wait waits for the Deployments Apply remembered from the watch, and for
// everything else (and Deployments it did not write) through the engine,
// all at once; the first failure ends the wait.
func (c *cachedRollouts) Wait(ctx context.Context, objs []*unstructured.Unstructured, opts apply.WaitOptions) error {
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
		opts.Timeout = 0 // the engine waits as long as ctx allows
	}
	var rest []*unstructured.Unstructured
	type rollout struct {
		obj *unstructured.Unstructured
		key string
		w   written
	}
	var rollouts []rollout
	c.mu.Lock()
	for _, o := range objs {
		ns := o.GetNamespace()
		if ns == "" {
			ns = opts.Namespace
		}
		key := ns + "/" + o.GetName()
		w, ok := c.expect[key]
		if ok && o.GetKind() == "Deployment" && o.GroupVersionKind().Group == "apps" {
			delete(c.expect, key) // one wait per write
			rollouts = append(rollouts, rollout{obj: o, key: key, w: w})
			continue
		}
		rest = append(rest, o)
	}
	c.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	if len(rest) > 0 {
		g.Go(func() error { return c.Engine.Wait(gctx, rest, opts) })
	}
	for _, r := range rollouts {
		g.Go(func() error { return c.waitRollout(gctx, r.obj, r.key, r.w, opts) })
	}
	return g.Wait()
}

// waitRollout waits until the watch shows the Deployment w ready, fails,
// or ctx ends; when the watch does not show w within rolloutFallback the
// engine waits for it instead (it reads the object from the API server).
func (c *cachedRollouts) waitRollout(ctx context.Context, obj *unstructured.Unstructured, key string, w written, opts apply.WaitOptions) error {
	wake := c.subscribe(key)
	defer c.unsubscribe(key, wake)
	ref := apply.RefOf(obj)
	if ref.Namespace == "" {
		ref.Namespace = opts.Namespace
	}
	last := "not observed yet"
	since := time.Now()
	tick := time.NewTicker(rolloutRecheck)
	defer tick.Stop()
	for {
		if u, ok := c.cached(key, w); ok {
			ready, msg, err := apply.Ready(u)
			if err != nil || ready {
				return err
			}
			last = msg
		} else if time.Since(since) > rolloutFallback {
			return c.Engine.Wait(ctx, []*unstructured.Unstructured{obj}, opts)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready: %s (%w)", ref, last, context.Cause(ctx))
		case <-wake:
		case <-tick.C:
		}
	}
}

// cached returns the watch's Deployment key as an object for apply.Ready,
// if it is the version w or a later one of the same object.
func (c *cachedRollouts) cached(key string, w written) (*unstructured.Unstructured, bool) {
	o, ok, err := c.deploys.GetStore().GetByKey(key)
	if err != nil || !ok {
		return nil, false
	}
	d, isDeploy := o.(*appsv1.Deployment)
	if !isDeploy || d.UID != w.uid || d.Generation < w.generation {
		return nil, false
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		return nil, false
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion("apps/v1")
	u.SetKind("Deployment")
	return u, true
}

func (c *cachedRollouts) subscribe(key string) chan struct{} {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.waiters[key] == nil {
		c.waiters[key] = map[chan struct{}]bool{}
	}
	c.waiters[key][ch] = true
	c.mu.Unlock()
	return ch
}

func (c *cachedRollouts) unsubscribe(key string, ch chan struct{}) {
	c.mu.Lock()
	delete(c.waiters[key], ch)
	if len(c.waiters[key]) == 0 {
		delete(c.waiters, key)
	}
	c.mu.Unlock()
}

// wake tells the rollouts waiting for key that it changed; a deleted
// Deployment's remembered write is dropped (nothing waits for it any more,
// or the wait falls back to the engine, which reports it gone).
func (c *cachedRollouts) wake(key string, deleted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if deleted {
		delete(c.expect, key)
	}
	for ch := range c.waiters[key] {
		select {
		case ch <- struct{}{}:
		default: // already woken
		}
	}
}
