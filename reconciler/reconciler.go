package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/chartsource"
	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/forge"
	"github.com/arbordev/arbor/internal/redact"
	"github.com/arbordev/arbor/workflow"
)

// Options are the parts a Reconciler is made of.
type Options struct {
	Config  *config.Config
	Sources map[string]Source // by app name, one per configured app
	// Forges are the apps' forges by app name, for the apps with one.
	Forges map[string]forge.Forge
	// Charts fetches remote Helm charts; nil: templates with remote charts
	// fail to render (their last good environment keeps running).
	Charts *chartsource.Fetcher
	Load   Loader
	Render Renderer
	// Engine is the one writer of environment objects.
	Engine   *apply.Engine
	Kube     kubernetes.Interface
	Metadata metadata.Interface
	Metrics  *Metrics
	Log      *slog.Logger
	// Workflows runs setup, patch and teardown, through Engine.
	Workflows *workflow.Executor
	// WaitTimeout bounds each readiness wait outside a workflow (a drift
	// repair); 5 minutes when zero.
	WaitTimeout time.Duration
	// RetryBase and RetryMax bound the backoff of a failing environment
	// (5ms and 5m when zero).
	RetryBase, RetryMax time.Duration
	// Cluster names the configured cluster Kube, Metadata and Engine reach
	// ("" is config.DefaultCluster): this Reconciler deploys the
	// environments placed there (cluster.go).
	Cluster string
	// Home reaches arbor's own namespace (the Lease, secrets_from): the
	// default cluster. Nil: Kube.
	Home kubernetes.Interface

	// Clock tells the time of pause schedules, idle times and pause
	// requests (docs/pausing.md); the real clock when nil. Tests step a
	// fake one instead of sleeping for hours.
	Clock clock.Clock

	// images builds or waits for built services' images (Wire sets it from
	// the config's images section); nil: references are taken as they are.
	// Each Reconciler keeps its own jobs over these shared parts.
	images *imageParts
}

// imageParts are the image builder or waiter the daemon's Reconcilers share.
type imageParts struct {
	mode    string
	builder imageBuilder
	waiter  imageWaiter
	// wakeRepo wakes the waits for a repository (external mode), relay
	// passes this replica's registry notifications to its peers.
	wakeRepo func(repository string) int
	relay    *pushRelay
}

// envKey names an environment: an app's branch.
type envKey struct{ App, Branch string }

func (k envKey) String() string { return k.App + "@" + k.Branch }

// Reconciler runs the daemon loop. Start its cache on every replica; Lead
// only on the replica holding the lease.
type Reconciler struct {
	opts    Options
	log     *slog.Logger
	apps    map[string]*appRunner
	order   []string // app names in config order
	cache   *clusterCache
	queue   workqueue.TypedRateLimitingInterface[envKey]
	status  *statusStore
	renders *renderCache
	imports *workflow.ImportIndex
	charts  chartCluster
	images  *imageSource // nil without an images mode
	leading atomic.Bool
	deleted deletions // environments deleted on request (deleted.go)

	clock   clock.Clock
	pausing pausings     // pause parts of the records being written (pause.go)
	traffic trafficState // requests seen by the traffic source (traffic.go)
	// wakeMu guards the waking Service's address (read once) and the
	// times of the last wake requests per namespace.
	wakeMu   sync.Mutex
	wakeIP   string
	wakePort int32
	wakeSent map[string]wakeSent
	cluster  string     // the configured cluster this Reconciler acts on
	placed   placements // where branches' environments go (cluster.go)
	// readyOn reports whether key's environment is Ready on another
	// cluster of the Fleet (cluster.go); nil outside a Fleet of several.
	readyOn func(cluster string, key envKey) bool
	health  clusterHealth
	// owner and shard: this replica's share of the apps (shard.go); nil:
	// every app (one Reconciler led directly).
	owner *ownership
	shard *shards
	// diag says why environments are not ready (diagnostics.go).
	diag *diagnostics
	// reported is each namespace's last diagnosis summary, to make the
	// forge report due when it changes.
	reportedMu sync.Mutex
	reported   map[string]string
}

// acts reports whether this replica acts on app now.
func (r *Reconciler) acts(app string) bool { return r.leading.Load() && r.owner.owns(app) }

// New builds a Reconciler; nothing runs until Start.
func New(opts Options) (*Reconciler, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RetryBase == 0 {
		opts.RetryBase = 5 * time.Millisecond
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = 5 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	r := &Reconciler{
		clock:   opts.Clock,
		opts:    opts,
		log:     opts.Log,
		apps:    map[string]*appRunner{},
		status:  newStatusStore(),
		renders: newRenderCache(),
		imports: workflow.NewImportIndex(),
	}
	if opts.WaitTimeout == 0 {
		r.opts.WaitTimeout = 5 * time.Minute
	}
	r.status.changed = r.statusChanged
	if p := opts.images; p != nil {
		r.images = newImageSource(p.mode, p.builder, p.waiter, opts.Log, opts.Metrics)
	}
	r.cluster = opts.Cluster
	if r.cluster == "" {
		r.cluster = config.DefaultCluster
	}
	if opts.Home == nil {
		r.opts.Home = opts.Kube
	}
	r.placed.m = map[envKey]placement{}
	if opts.Workflows == nil {
		return nil, errors.New("reconciler: no workflow executor")
	}
	for _, a := range opts.Config.Apps {
		if !follows(r.cluster, a) {
			continue
		}
		src, ok := opts.Sources[a.Name]
		if !ok {
			return nil, fmt.Errorf("app %s: no source", a.Name)
		}
		r.apps[a.Name] = &appRunner{cfg: a, src: src, settings: settingsHash(opts.Config, a), refresh: make(chan struct{}, 1)}
		if f, ok := opts.Forges[a.Name]; ok {
			r.apps[a.Name].forge = newForgeRunner(a, f)
		}
		r.order = append(r.order, a.Name)
	}
	c, err := newClusterCache(opts.Metadata, opts.Kube, opts.Config.Install, opts.Log, r.namespaceChanged)
	if err != nil {
		return nil, err
	}
	r.cache = c
	if r.diag, err = newDiagnostics(opts.Kube, opts.Config.Install, opts.Log, r.problemsChanged); err != nil {
		return nil, err
	}
	// Rollouts are waited for from the diagnostics' watch of Deployments
	// (rolloutwait.go); a copy of the executor, so that one shared by
	// several reconcilers is not wrapped twice.
	x := *r.opts.Workflows
	if x.Engine != nil {
		if x.Engine, err = newCachedRollouts(x.Engine, r.diag.deploys); err != nil {
			return nil, err
		}
		r.opts.Workflows = &x
	}
	r.reported = map[string]string{}
	return r, nil
}

// Start runs the watch-based cache and waits for its first listing.
func (r *Reconciler) Start(ctx context.Context) error {
	for _, name := range r.order {
		go r.watchTriggers(ctx, r.apps[name])
	}
	r.diag.start(ctx)
	return r.cache.start(ctx)
}

// Ready reports whether the cache is synced and, when leading, every app has
// had its first listing attempt.
func (r *Reconciler) Ready() bool {
	if !r.cache.synced() {
		return false
	}
	if !r.leading.Load() {
		return true
	}
	for name, a := range r.apps {
		if r.owner.owns(name) && !a.attempted.Load() {
			return false
		}
	}
	return true
}

// Leading reports whether this replica acts.
func (r *Reconciler) Leading() bool { return r.leading.Load() }

// HasApp reports whether app is one of the configured apps.
func (r *Reconciler) HasApp(app string) bool {
	_, ok := r.apps[app]
	return ok
}

// Lead acts until ctx ends: polls every app and runs the workers. Call it
// only while holding the lease, after Start.
func (r *Reconciler) Lead(ctx context.Context) error {
	limiter := workqueue.NewTypedItemExponentialFailureRateLimiter[envKey](r.opts.RetryBase, r.opts.RetryMax)
	r.queue = workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[envKey]{Name: "environments"})
	r.deleted.reset()
	r.leading.Store(true)
	if r.owner == nil { // sharded: the share sets it (shard.go)
		r.opts.Metrics.leader.Set(1)
	}
	defer func() {
		r.leading.Store(false)
		if r.owner == nil {
			r.opts.Metrics.leader.Set(0)
		}
	}()
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	if r.images != nil {
		r.images.start(ctx, func(k envKey) { r.queue.Add(k) })
	}
	var g errgroup.Group
	g.Go(func() error { r.pauseLoop(ctx); return nil })
	g.Go(func() error { r.trafficLoop(ctx); return nil })
	for _, name := range r.order {
		a := r.apps[name]
		g.Go(func() error { r.pollApp(ctx, a); return nil })
		if a.forge != nil {
			g.Go(func() error { r.runReports(ctx, a); return nil })
		}
	}
	for range max(1, r.opts.Config.Concurrency) {
		g.Go(func() error {
			for r.processNext(ctx) {
			}
			return nil
		})
	}
	_ = g.Wait()
	return ctx.Err()
}

// namespaceChanged is the cache's callback: ns, or something in it,
// changed. The stream of deletions inside a terminating namespace queues
// nothing: whoever waits for it looks again on a timer.
func (r *Reconciler) namespaceChanged(ns string, itself bool) {
	if !r.leading.Load() {
		return
	}
	if itself {
		for _, name := range r.order {
			r.requeueWaiting(name) // an environment going away frees a slot
		}
	}
	if rec := r.cache.envOfNamespace(ns); rec != nil && r.apps[rec.App] != nil && r.owner.owns(rec.App) && (itself || !rec.Deleting) {
		r.queue.Add(envKey{App: rec.App, Branch: rec.Branch})
	}
}

func (r *Reconciler) processNext(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	actx, done, ok := r.owner.begin(ctx, key.App)
	if !ok {
		r.queue.Forget(key) // another replica's now; it queues the app when it takes it
		return true
	}
	defer done()
	if err := r.reconcile(actx, key); err != nil && actx.Err() == nil {
		r.log.Warn("reconcile failed; will retry", "app", key.App, "branch", key.Branch, "error", err,
			"retry", r.queue.NumRequeues(key)+1)
		r.queue.AddRateLimited(key)
		return true
	}
	r.queue.Forget(key)
	return true
}

// appRunner is one app: its config, its repository and its last listing.
type appRunner struct {
	cfg       config.App
	src       Source
	settings  string        // settingsHash of the app, fixed for the daemon's life
	forge     *forgeRunner  // nil without a forge
	refresh   chan struct{} // wakes the poll loop (watchTriggers, refresh requests)
	attempted atomic.Bool
	slots     slots // max_environments (guards.go)

	mu       sync.Mutex
	listing  *listing // last successful listing; nil until one
	lastErr  error
	lastTime time.Time
}

// listing is a successful, non-empty branch listing.
type listing struct {
	Branches map[string]string
	Default  string
	At       time.Time
	// PRs are the open pull requests by head branch, with a forge; nil without.
	PRs map[string]forge.PullRequest
}

func (a *appRunner) current() *listing {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.listing
}

// pollApp refreshes the app at every poll interval and on every trigger.
func (r *Reconciler) pollApp(ctx context.Context, a *appRunner) {
	t := time.NewTicker(a.cfg.PollInterval.Duration)
	defer t.Stop()
	for {
		if r.owner.owns(a.cfg.Name) {
			r.refresh(ctx, a)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.refresh:
		}
	}
}

// refresh lists the branches, fetches what moved, and queues every
// environment of the app: the listed branches, those found in the cluster
// and those listed last time.
// A failed or empty listing keeps the previous one and queues nothing.
func (r *Reconciler) refresh(ctx context.Context, a *appRunner) {
	defer a.attempted.Store(true)
	branches, def, err := a.src.ListBranches(ctx)
	if err == nil && len(branches) == 0 {
		err = errors.New("repository lists no branches")
	}
	if err == nil {
		err = a.src.Fetch(ctx, branches)
	}
	prs, err := r.listPullRequests(ctx, a, err)
	// gitsource redacts its own errors; this keeps any other that quotes the
	// address (a wrapped transport error) from reaching status and logs.
	err = redact.Error(err, a.cfg.Repo)
	a.mu.Lock()
	a.lastTime, a.lastErr = time.Now(), err
	prev := a.listing
	if err == nil {
		a.listing = &listing{Branches: branches, Default: def, At: a.lastTime, PRs: prs}
	}
	a.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			r.opts.Metrics.listingErrors.WithLabelValues(a.cfg.Name).Inc()
			r.log.Warn("branch listing failed; nothing will be deleted", "app", a.cfg.Name, "error", err)
		}
		return
	}
	for _, b := range sortedKeys(branches) {
		r.queue.Add(envKey{App: a.cfg.Name, Branch: b})
	}
	for _, rec := range r.cache.envs(a.cfg.Name) {
		r.queue.Add(envKey{App: a.cfg.Name, Branch: rec.Branch})
	}
	if prev != nil {
		// Gone since the last listing: a branch never deployed (waiting
		// for its images or a slot, invalid) has no namespace to be found
		// by, and what is kept of it (status, image job) goes only when
		// it is reconciled.
		for b := range prev.Branches {
			if _, ok := branches[b]; !ok {
				r.queue.Add(envKey{App: a.cfg.Name, Branch: b})
			}
		}
	}
	r.queueImporters(a.cfg.Name, prev, branches)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// settingsHash identifies the daemon-side inputs of an app's renders: a
// change of parameters or defaults re-renders every environment.
func settingsHash(c *config.Config, a config.App) string {
	// max_environments decides which branches are deployed, not what: a
	// change of it re-renders nothing.
	defaults, guards := c.Defaults, c.GuardsFor(a)
	defaults.MaxEnvironments, guards.MaxEnvironments = 0, 0
	b, _ := json.Marshal(struct {
		Path                   string
		Parameters             map[string]string
		Defaults               config.Defaults
		SecretsFrom            string
		AllowClusterScoped     bool
		AllowForeignNamespaces bool
		PodSecurity            string
		Kustomize              config.KustomizeLimits // a render refused by a limit is retried when it is raised
		MaxConfigSize          int64                  // a configuration refused as too large is read again when it is raised
		Install                string                 // on every object
		ServiceAccount         string                 // bound in every environment
		Guards                 config.Guards          // the quota and limits in every environment
	}{a.Path, a.Parameters, defaults, a.SecretsFrom, c.AllowClusterScoped, c.AllowForeignNamespaces, a.PodSecurity, a.Kustomize, a.MaxConfigSize.Bytes,
		c.Install, c.Namespace + "/" + c.ServiceAccount, guards})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// listPullRequests lists the app's open pull requests after a branch
// listing that worked (err is its error), in pull_requests mode, where they
// decide which branches get an environment: a failed pull request listing
// is then an error of the whole listing, so nothing is deleted. In branches
// mode the forge's own goroutine lists them (forgeRunner.relist), and its
// errors show in status and metrics.
func (r *Reconciler) listPullRequests(ctx context.Context, a *appRunner, err error) (map[string]forge.PullRequest, error) {
	if err != nil || a.forge == nil {
		return nil, err
	}
	if a.cfg.Environments != config.EnvironmentsPullRequests {
		a.forge.relist()
		return nil, nil
	}
	prs, ferr := a.forge.list(ctx)
	if ferr != nil {
		a.forge.setErr(ferr)
		r.opts.Metrics.forgeErrors.WithLabelValues(a.cfg.Name).Inc()
		return nil, ferr
	}
	return prs, nil
}

// statusChanged makes the environment's forge report due: its phase or
// record changed.
func (r *Reconciler) statusChanged(key envKey) {
	if a := r.apps[key.App]; a != nil {
		a.forge.due(key.Branch)
	}
}
