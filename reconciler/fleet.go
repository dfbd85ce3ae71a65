package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/workflow"
)

// Fleet is the daemon on every configured cluster: one Reconciler per
// cluster (cluster.go), started, led and read as one. The default cluster's
// Reconciler is its home: arbor's namespace, its Lease and its Secrets are
// there, and the daemon's readiness is that Reconciler's.
type Fleet struct {
	home    *Reconciler
	members []*Reconciler // home first, then by cluster name
	fans    []*triggerFan
	log     *slog.Logger
	// shard is this replica's share once RunSharded runs (read by the
	// HTTP server's goroutines: forward.go).
	shard atomic.Pointer[shards]
	// HealthEvery is how often each cluster's API server is asked /readyz
	// (5s when zero).
	HealthEvery time.Duration
}

// NewFleet builds a Reconciler for each member's Options (one per cluster,
// Options.Cluster naming it; one of them config.DefaultCluster). Every
// Reconciler follows the same sources; with more than one cluster each gets
// its own copy of their triggers.
func NewFleet(members []Options) (*Fleet, error) {
	var home kubernetes.Interface
	for _, o := range members {
		if o.Cluster == "" || o.Cluster == config.DefaultCluster {
			home = o.Kube
		}
	}
	if home == nil {
		return nil, fmt.Errorf("no options for the %q cluster, which holds arbor's namespace", config.DefaultCluster)
	}
	f := &Fleet{}
	if len(members) > 1 {
		f.fans = fanTriggers(members[0].Sources, len(members))
	}
	for i, o := range members {
		o.Home = home
		if f.fans != nil {
			o.Sources = map[string]Source{}
			for _, fan := range f.fans {
				o.Sources[fan.app] = fan.outs[i]
			}
		}
		r, err := New(o)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", o.Cluster, err)
		}
		f.members = append(f.members, r)
		f.log = r.log
	}
	sort.SliceStable(f.members, func(i, j int) bool {
		a, b := f.members[i].cluster, f.members[j].cluster
		return a == config.DefaultCluster || (b != config.DefaultCluster && a < b)
	})
	f.home = f.members[0]
	if len(f.members) > 1 {
		for _, r := range f.members {
			r.readyOn = f.readyOn
		}
	}
	return f, nil
}

// Home is the default cluster's Reconciler.
func (f *Fleet) Home() *Reconciler { return f.home }

// Start runs every cluster's cache and health checks, and waits for the
// home cluster's first listing only: a cluster that does not answer
// catches up in the background, holding up none of the others.
func (f *Fleet) Start(ctx context.Context) error {
	for _, fan := range f.fans {
		go fan.run(ctx)
	}
	for _, r := range f.members {
		go f.watchHealth(ctx, r)
		if r == f.home {
			continue
		}
		go func() {
			if err := r.Start(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("cluster cache did not start", "cluster", r.cluster, "error", err)
			}
		}()
	}
	return f.home.Start(ctx)
}

// Lead runs every cluster's Reconciler while this replica holds the lease;
// each starts once its cache has synced. It returns when ctx ends.
func (f *Fleet) Lead(ctx context.Context) error {
	var g errgroup.Group
	for _, r := range f.members {
		g.Go(func() error {
			if !waitSynced(ctx, r) {
				return nil
			}
			if err := r.Lead(ctx); err != nil && ctx.Err() == nil {
				f.log.Error("reconciler stopped", "cluster", r.cluster, "error", err)
			}
			return nil
		})
	}
	_ = g.Wait()
	return ctx.Err()
}

func waitSynced(ctx context.Context, r *Reconciler) bool {
	for !r.cache.synced() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return true
}

// watchHealth asks r's API server /readyz at every HealthEvery: its answer
// is the cluster's health in the status API and arbor_cluster_up. A
// cluster that answers again has every app refreshed at once, so its
// environments catch up without waiting out their backoff.
func (f *Fleet) watchHealth(ctx context.Context, r *Reconciler) {
	every := f.HealthEvery
	if every == 0 {
		every = 5 * time.Second
	}
	up := r.opts.Metrics.clusterUp.WithLabelValues(r.cluster)
	for {
		cctx, cancel := context.WithTimeout(ctx, min(every, 5*time.Second))
		_, err := r.opts.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			err = fmt.Errorf("cluster %s does not answer: %w", r.cluster, err)
			r.opts.Metrics.clusterErrors.WithLabelValues(r.cluster).Inc()
			up.Set(0)
			if !r.health.set(err) {
				f.log.Warn("cluster down: its environments wait, nothing is deleted", "cluster", r.cluster, "error", err)
			}
		} else {
			up.Set(1)
			if r.health.set(nil) {
				f.log.Info("cluster answers again: refreshing its environments", "cluster", r.cluster)
				r.wakeAll()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// wakeAll makes every app's poll loop refresh now, when leading.
func (r *Reconciler) wakeAll() {
	if !r.leading.Load() {
		return
	}
	for _, a := range r.apps {
		a.wake()
	}
}

// Ready is the home cluster's readiness: another cluster that is down shows
// in status and metrics, and does not take the daemon out of service.
func (f *Fleet) Ready() bool { return f.home.Ready() }

// Leading reports whether this replica acts on at least one app.
func (f *Fleet) Leading() bool {
	return f.home.Leading() && (f.home.owner == nil || len(f.home.owner.list()) > 0)
}

// HasApp reports whether app is one of the configured apps.
func (f *Fleet) HasApp(app string) bool {
	for _, r := range f.members {
		if r.HasApp(app) {
			return true
		}
	}
	return false
}

// Apps returns every configured app as its own cluster's Reconciler sees
// it, with its environments counted on every cluster.
func (f *Fleet) Apps() []AppStatus {
	out := []AppStatus{}
	for _, a := range f.home.opts.Config.Apps {
		r := f.member(homeCluster(a))
		if r == nil {
			continue
		}
		for _, s := range r.Apps() {
			if s.Name == a.Name {
				s.Environments = len(f.Environments(a.Name))
				out = append(out, s)
			}
		}
	}
	return out
}

func (f *Fleet) member(cluster string) *Reconciler {
	for _, r := range f.members {
		if r.cluster == cluster {
			return r
		}
	}
	return nil
}

// readyOn reports whether key's environment is Ready on cluster (true for
// a cluster the Fleet does not have: nothing there to wait for).
func (f *Fleet) readyOn(cluster string, key envKey) bool {
	m := f.member(cluster)
	return m == nil || m.readyHere(key)
}

// Environments returns app's environments on every cluster, by branch.
func (f *Fleet) Environments(app string) []EnvironmentStatus {
	var out []EnvironmentStatus
	for _, r := range f.members {
		if r.HasApp(app) {
			out = append(out, r.Environments(app)...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Branch < out[j].Branch })
	if out == nil {
		out = []EnvironmentStatus{}
	}
	return out
}

// RequestDeploy records a deploy request on the environment's namespace,
// on whichever cluster it is.
func (f *Fleet) RequestDeploy(ctx context.Context, app, env string) (workflow.DeployResponse, error) {
	for _, r := range f.members {
		if _, ok := r.findEnvironment(app, env); ok {
			return r.RequestDeploy(ctx, app, env)
		}
	}
	return workflow.DeployResponse{}, fmt.Errorf("app %s has no environment %s: %w", app, env, ErrNoEnvironment)
}

// MetricsHandler serves reg's metrics, arbor_environments recomputed first
// over every cluster.
func (f *Fleet) MetricsHandler(reg *prometheus.Registry) http.Handler {
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		f.home.opts.Metrics.environments.Reset()
		f.home.opts.Metrics.problems.Reset()
		for _, r := range f.members {
			r.addPhaseGauge()
		}
		metrics.ServeHTTP(w, req)
	})
}

// ClusterREST is how arbor reaches the configured cluster cl other than the
// default one: its kubeconfig file, or the key "kubeconfig" of the Secret
// it names in arbor's namespace (read through home), or kubectl's own
// rules; with its context, or the kubeconfig's current one.
func ClusterREST(ctx context.Context, home kubernetes.Interface, namespace string, cl config.Cluster) (*rest.Config, error) {
	overrides := &clientcmd.ConfigOverrides{CurrentContext: cl.Context}
	if cl.KubeconfigSecret != "" {
		s, err := home.CoreV1().Secrets(namespace).Get(ctx, cl.KubeconfigSecret, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("kubeconfig_secret %s/%s: %w", namespace, cl.KubeconfigSecret, err)
		}
		b, ok := s.Data["kubeconfig"]
		if !ok {
			return nil, fmt.Errorf("kubeconfig_secret %s/%s: no key \"kubeconfig\"", namespace, cl.KubeconfigSecret)
		}
		raw, err := clientcmd.Load(b)
		if err != nil {
			// The loader's message may quote the file: say only where it is.
			return nil, fmt.Errorf("kubeconfig_secret %s/%s: not a kubeconfig", namespace, cl.KubeconfigSecret)
		}
		c, err := clientcmd.NewNonInteractiveClientConfig(*raw, cl.Context, overrides, nil).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kubeconfig_secret %s/%s: %w", namespace, cl.KubeconfigSecret, err)
		}
		return c, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cl.Kubeconfig != "" {
		if _, err := os.Stat(cl.Kubeconfig); err != nil {
			return nil, fmt.Errorf("kubeconfig: %w", err)
		}
		rules.ExplicitPath = cl.Kubeconfig
	}
	c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes configuration: %w", err)
	}
	return c, nil
}

// triggerFan copies one source's triggers to every cluster's Reconciler: a
// channel read by several would give each change to one of them only.
type triggerFan struct {
	app  string
	src  Source
	outs []*fannedSource
}

// fannedSource is a source whose triggers are one Reconciler's copy.
type fannedSource struct {
	Source
	triggers chan struct{}
}

func (s *fannedSource) Triggers() <-chan struct{} { return s.triggers }

func fanTriggers(sources map[string]Source, n int) []*triggerFan {
	var out []*triggerFan
	for app, src := range sources {
		fan := &triggerFan{app: app, src: src}
		for range n {
			fan.outs = append(fan.outs, &fannedSource{Source: src, triggers: make(chan struct{}, 1)})
		}
		out = append(out, fan)
	}
	return out
}

func (fan *triggerFan) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-fan.src.Triggers():
		}
		for _, o := range fan.outs {
			select {
			case o.triggers <- struct{}{}:
			default: // one pending is enough
			}
		}
	}
}
