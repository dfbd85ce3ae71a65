package reconciler

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/arbordev/arbor/config"
)

// Many clusters: each configured cluster has a Reconciler of its own (its
// cache, engine, clients and so rate limits, queue and health), and a Fleet
// (fleet.go) runs them side by side. Every Reconciler follows every app;
// a branch's environment is placed on the cluster its template's context
// names, else on its app's cluster, and each Reconciler deploys only the
// environments placed on its cluster. A cluster that is down stops only its
// own Reconciler's writes: the others never wait for it.

// errOtherCluster: the branch's environment is placed on another cluster.
var errOtherCluster = errors.New("the environment is placed on another cluster")

// placement is where a branch's environment goes at one commit (its
// template's context can move it at the next).
type placement struct{ commit, cluster string }

// placements remembers each branch's placement, so that the Reconcilers of
// the other clusters do not load its configuration again at every poll.
type placements struct {
	mu sync.Mutex
	m  map[envKey]placement
}

func (p *placements) get(key envKey) (placement, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[key]
	return v, ok
}

func (p *placements) set(key envKey, v placement) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[key] = v
}

func (p *placements) forget(key envKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, key)
}

// place decides the cluster of key's environment at commit, from the app's
// cluster and the template's context, and remembers it. A context that
// names no configured cluster is a warning, and the app's cluster is used.
func (r *Reconciler) place(key envKey, commit string, app config.App, context string) (cluster, warning string) {
	cluster = homeCluster(app)
	if context != "" && context != cluster {
		_, ok := r.opts.Config.Clusters[context]
		switch {
		case !ok:
			warning = fmt.Sprintf("context %q names no cluster of the daemon's configuration: the environment runs on the app's cluster %q", context, cluster)
		case !follows(context, app):
			warning = fmt.Sprintf("context %q is ignored for an app with a forge: the environment runs on the app's cluster %q", context, cluster)
		default:
			cluster = context
		}
	}
	r.placed.set(key, placement{commit: commit, cluster: cluster})
	return cluster, warning
}

// follows reports whether the Reconciler of cluster follows app: every
// app's own cluster does, and every cluster follows the apps without a forge
// (their templates' context may place a branch there). An app with a forge
// stays on its own cluster: its pull request listing, commit statuses and
// comment have one writer.
func follows(cluster string, app config.App) bool {
	return homeCluster(app) == cluster || !app.Forge.Enabled()
}

// homeCluster is the app's configured cluster.
func homeCluster(app config.App) string {
	if app.Cluster == "" {
		return config.DefaultCluster
	}
	return app.Cluster
}

// placedElsewhere reports whether key's environment at commit is already
// known to go to another cluster than this Reconciler's.
func (r *Reconciler) placedElsewhere(key envKey, commit string) bool {
	p, ok := r.placed.get(key)
	return ok && p.commit == commit && p.cluster != r.cluster
}

// moveRecheck is how often an environment kept on its old cluster looks
// again whether its new cluster's is Ready (in memory: no request).
const moveRecheck = 5 * time.Second

// keptUntilMoved reports whether key's environment here, now placed on
// another cluster, stays until the environment there is Ready: a move is
// made before the old one is broken, so the branch keeps a running
// environment while the new cluster is down, refuses the objects or is
// still starting them. Meanwhile its status says so, and it looks again
// every moveRecheck.
func (r *Reconciler) keptUntilMoved(key envKey, rec *envRecord) bool {
	p, ok := r.placed.get(key)
	if rec == nil || rec.Deleting || !ok || p.cluster == r.cluster || r.readyOn == nil || r.readyOn(p.cluster, key) {
		return false
	}
	st := r.status.get(key)
	if st == nil && rec.State != nil {
		cp := *rec.State
		st = &cp
	}
	if st != nil {
		msg := fmt.Sprintf("moving to cluster %s: kept here until the environment is Ready there", p.cluster)
		if st.Message != msg {
			st.Message = msg
			r.status.set(key, st)
		}
	}
	r.queue.AddAfter(key, moveRecheck)
	return true
}

// readyHere reports whether key's environment on this Reconciler's cluster
// is Ready (or Paused: deployed, scaled down on purpose).
func (r *Reconciler) readyHere(key envKey) bool {
	st := r.status.get(key)
	if st == nil {
		if rec := r.cache.env(key.App, key.Branch); rec != nil {
			st = rec.State
		}
	}
	return st != nil && (st.Phase == PhaseReady || st.Phase == PhasePaused)
}

// quiet reports whether a failure to load or render key at commit is left
// to the app's own cluster to report: this cluster has no environment of
// the branch and the commit was not placed here.
func (r *Reconciler) quiet(a *appRunner, key envKey, rec *envRecord, commit string) bool {
	if rec != nil || homeCluster(a.cfg) == r.cluster {
		return false
	}
	p, ok := r.placed.get(key)
	return !ok || p.commit != commit || p.cluster != r.cluster
}

// clusterLabel is the cluster named in the status API: only with more than
// one configured.
func (r *Reconciler) clusterLabel() string {
	if len(r.opts.Config.Clusters) > 1 {
		return r.cluster
	}
	return ""
}

// clusterHealth is the last health check of the Reconciler's cluster.
type clusterHealth struct {
	mu  sync.Mutex
	err error
}

// set records a check's result and reports whether the cluster was down
// before it.
func (h *clusterHealth) set(err error) (wasDown bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wasDown = h.err != nil
	h.err = err
	return wasDown
}

func (h *clusterHealth) errText() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return ""
	}
	return h.err.Error()
}
