package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// DefaultConcurrency bounds the requests one verb call has in flight.
const DefaultConcurrency = 8

// Options configure an Engine. The zero value is the safe default: confined to
// the environment namespace, no forced conflicts.
type Options struct {
	// Force takes ownership of fields another field manager owns. Without it a
	// conflict is an error naming the manager and the fields.
	Force bool
	// Concurrency bounds the requests in flight inside one order group of one
	// call (DefaultConcurrency when zero).
	Concurrency int
	// AllowClusterScoped permits cluster-scoped objects other than the
	// environment's own Namespace.
	AllowClusterScoped bool
	// AllowedNamespaces are namespaces other than the environment namespace
	// that objects may name.
	AllowedNamespaces []string
	// ProtectedNamespaces are never deleted, in addition to kube-system,
	// kube-public, kube-node-lease and default. Put arbor's own namespace here.
	ProtectedNamespaces []string
}

// Engine applies objects with server-side apply. It is safe for concurrent use;
// the daemon shares one Engine across all environments.
type Engine struct {
	opts   Options
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	mapMu  sync.Mutex // serializes mapper resets
	// mappings keeps the mapper's answers by GroupVersionKind until its next
	// reset: the mapper builds its answer (and an error for every API group
	// it tries first) anew on each call: 7% of the daemon's
	// allocations at a thousand environments.
	mappings sync.Map
	// lastReset is when an unknown kind last made the mapper rediscover
	// the API (guarded by mapMu).
	lastReset time.Time
}

// New returns an Engine for the cluster cfg points at. To count or observe
// requests, wrap cfg's transport first (cfg.Wrap). A zero cfg.QPS gets a limit
// suited to bulk applies instead of client-go's default of 5.
func New(cfg *rest.Config, opts Options) (*Engine, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 200, 400
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes discovery: %w", err)
	}
	return &Engine{
		opts:   opts,
		dyn:    dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
	}, nil
}

// item is one object prepared for a verb: confined, mapped and ordered.
type item struct {
	idx     int // position in the caller's slice, and in the ChangeSet
	obj     *unstructured.Unstructured
	ref     ObjectRef
	mapping *meta.RESTMapping // nil until its kind is known (custom resources of a CRD in the same set)
	group   int
}

func (it *item) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{it.ref}, args...)...)
}

// resource returns the dynamic client for the item's resource and namespace.
func (e *Engine) resource(it *item) dynamic.ResourceInterface {
	r := e.dyn.Resource(it.mapping.Resource)
	if it.mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return r.Namespace(it.ref.Namespace)
	}
	return r
}

// forEach runs fn on every item with the engine's concurrency bound, and joins
// the errors. Every item runs even when some fail: the change set is complete.
func (e *Engine) forEach(ctx context.Context, items []*item, fn func(context.Context, *item) error) error {
	g := new(errgroup.Group)
	g.SetLimit(e.opts.Concurrency)
	errs := make([]error, len(items))
	for i, it := range items {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				errs[i] = it.errorf("%w", err)
				return nil
			}
			errs[i] = fn(ctx, it)
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// protected reports whether the namespace must never be deleted.
func (e *Engine) protected(ns string) bool {
	return ProtectedNamespace(ns) || slices.Contains(e.opts.ProtectedNamespaces, ns)
}

// ProtectedNamespace reports whether ns is one of the namespaces arbor never
// deletes whatever its configuration: the cluster's own and the empty name.
func ProtectedNamespace(ns string) bool {
	switch ns {
	case "", "default", "kube-system", "kube-public", "kube-node-lease":
		return true
	}
	return false
}

// managed reports whether obj carries arbor's managed-by label.
func managed(obj *unstructured.Unstructured) bool {
	return obj.GetLabels()[LabelManagedBy] == ManagedByValue
}
