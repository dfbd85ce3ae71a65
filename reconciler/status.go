package reconciler

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/arbordev/arbor/diagnose"
	"github.com/arbordev/arbor/internal/redact"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/workflow"
)

// statusStore holds what the leader knows of each environment beyond the
// cluster records: transient phases, and errors of branches never deployed.
type statusStore struct {
	mu sync.Mutex
	m  map[envKey]*envState
	// changed, when set, is told of every set and forget (outside the lock).
	changed func(envKey)
}

func newStatusStore() *statusStore { return &statusStore{m: map[envKey]*envState{}} }

func (s *statusStore) set(key envKey, st *envState) {
	cp := *st
	s.mu.Lock()
	if old, ok := s.m[key]; ok && old.Phase == cp.Phase && !cp.LastTransition.IsZero() {
		cp.LastTransition = old.LastTransition
	}
	s.m[key] = &cp
	s.mu.Unlock()
	if s.changed != nil {
		s.changed(key)
	}
}

// get returns a copy of what is known of key, or nil.
func (s *statusStore) get(key envKey) *envState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[key]
	if !ok {
		return nil
	}
	cp := *st
	return &cp
}

func (s *statusStore) forget(key envKey) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
	if s.changed != nil {
		s.changed(key)
	}
}

// knownInvalid reports whether the environment was already found invalid
// at this commit and settings (for branches with no record in the cluster).
func (s *statusStore) knownInvalid(key envKey, commit, settings string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[key]
	return ok && st.Phase == PhaseInvalid && st.InvalidCommit == commit && st.SettingsHash == settings
}

func (s *statusStore) snapshot() map[envKey]envState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[envKey]envState, len(s.m))
	for k, v := range s.m {
		out[k] = *v
	}
	return out
}

// AppStatus is one app in the status API.
type AppStatus struct {
	Name    string `json:"name"`
	Repo    string `json:"repo"`
	Standby bool   `json:"standby,omitempty"` // this replica does not act on the app: no listing of its own
	// Owner is the replica acting on the app, as this one last saw the
	// replica Leases ("" without sharding).
	Owner         string     `json:"owner,omitempty"`
	DefaultBranch string     `json:"defaultBranch,omitempty"`
	Branches      int        `json:"branches"`
	Environments  int        `json:"environments"`
	LastListing   *time.Time `json:"lastListing,omitempty"`
	ListingError  string     `json:"listingError,omitempty"`
	// ForgeError is the last error of the app's forge (a pull request
	// listing, a commit status or a comment); deploys go on regardless.
	ForgeError string `json:"forgeError,omitempty"`
	// PullRequests counts the open pull requests of the repository itself,
	// for an app with a forge.
	PullRequests int `json:"pullRequests,omitempty"`
}

// EnvironmentStatus is one environment in the status API.
type EnvironmentStatus struct {
	App           string `json:"app"`
	Branch        string `json:"branch"`
	Commit        string `json:"commit,omitempty"` // the commit running
	InvalidCommit string `json:"invalidCommit,omitempty"`
	EnvID         string `json:"envID,omitempty"`
	Namespace     string `json:"namespace,omitempty"`
	Phase         string `json:"phase"`
	Message       string `json:"message,omitempty"` // what it waits for: "Waiting for image REF"
	// TargetCommit is the commit waited for (images, a slot) or failed before it
	// ran, while Commit keeps running.
	TargetCommit   string             `json:"targetCommit,omitempty"`
	LastError      string             `json:"lastError,omitempty"`
	Findings       schema.Findings    `json:"findings,omitempty"`
	LastTransition time.Time          `json:"lastTransition"`
	Template       string             `json:"template,omitempty"`
	URLs           []render.URL       `json:"urls,omitempty"`
	Links          []schema.Link      `json:"links,omitempty"`
	ExpiresAfter   string             `json:"expiresAfter,omitempty"`
	ExpiresAt      time.Time          `json:"expiresAt,omitzero"`
	HeldCommit     string             `json:"heldCommit,omitempty"` // auto_deploy: false: the commit waiting for a deploy request
	Workflow       *workflow.Progress `json:"workflow,omitempty"`
	// Warnings are the render's warnings for the commit deployed.
	Warnings []string `json:"warnings,omitempty"`
	// Images are the built services' images: pinned, or the failing build
	// step and its log.
	Images []ImageStatus `json:"images,omitempty"`
	// Paused: scaled to zero (phase Paused, or Deploying while it resumes);
	// PauseReason says what paused it (api, schedule, idle) and PausedSince when.
	Paused      bool      `json:"paused,omitempty"`
	PauseReason string    `json:"pauseReason,omitempty"`
	PausedSince time.Time `json:"pausedSince,omitzero"`
	// LastRequestAt is the last reading of the cluster's traffic source in
	// which the environment's request counter moved (docs/pausing.md).
	LastRequestAt time.Time `json:"lastRequestAt,omitzero"`
	// Cluster names the configured cluster the environment is on, with
	// more than one configured; ClusterError is that cluster's last
	// health error while it does not answer (cluster.go).
	Cluster      string `json:"cluster,omitempty"`
	ClusterError string `json:"clusterError,omitempty"`
	// Problems say why services, jobs or volumes are not ready, from the
	// daemon's watches of the environment's pods and claims (package diagnose).
	Problems []diagnose.Problem `json:"problems,omitempty"`
}

// Environments returns an app's environments, sorted by branch: the records
// in the cluster, overlaid (on the leader) with what it knows in memory.
func (r *Reconciler) Environments(app string) []EnvironmentStatus {
	byBranch := r.states(app)
	out := make([]EnvironmentStatus, 0, len(byBranch))
	for _, b := range slices.Sorted(maps.Keys(byBranch)) {
		st := byBranch[b]
		out = append(out, r.environmentStatus(&st))
	}
	return out
}

// Environment returns one environment of app, by branch or env id (the
// first in branch order): only that one is diagnosed.
func (r *Reconciler) Environment(app, env string) (EnvironmentStatus, bool) {
	byBranch := r.states(app)
	for _, b := range slices.Sorted(maps.Keys(byBranch)) {
		if st := byBranch[b]; st.Branch == env || (st.EnvID != "" && st.EnvID == env) {
			return r.environmentStatus(&st), true
		}
	}
	return EnvironmentStatus{}, false
}

// states are app's environments' states by branch: the records in the
// cluster, overlaid (on the leader) with what it knows in memory.
func (r *Reconciler) states(app string) map[string]envState {
	byBranch := map[string]envState{}
	for _, st := range r.cache.allStates() {
		if st.App == app {
			byBranch[st.Branch] = *st
		}
	}
	if r.acts(app) {
		for k, st := range r.status.snapshot() {
			if k.App == app {
				byBranch[k.Branch] = st
			}
		}
	}
	return byBranch
}

// environmentStatus is st as the status API shows it, diagnosed.
func (r *Reconciler) environmentStatus(st *envState) EnvironmentStatus {
	e := EnvironmentStatus{
		App: st.App, Branch: st.Branch, Commit: st.Commit, InvalidCommit: st.InvalidCommit,
		EnvID: st.EnvID, Namespace: st.Namespace, Phase: st.Phase, LastError: st.LastError,
		Findings: st.Findings, LastTransition: st.LastTransition, Template: st.Template,
		URLs: st.URLs, Links: st.Links, ExpiresAfter: st.ExpiresAfter, Workflow: st.Workflow,
		ExpiresAt: st.ExpiresAt, HeldCommit: st.HeldCommit, Warnings: st.Warnings,
		Message: st.Message, Images: st.Images, TargetCommit: st.TargetCommit,
		Cluster: r.clusterLabel(), ClusterError: r.health.errText(),
		Problems: r.problemsOf(st),
	}
	if p := st.Pause; p != nil && p.Paused {
		e.Paused, e.PauseReason, e.PausedSince = true, p.Reason, p.Since
	}
	e.LastRequestAt = r.traffic.lastRequest(st.Namespace)
	return e
}

// Apps returns every configured app, in configuration order.
func (r *Reconciler) Apps() []AppStatus {
	out := make([]AppStatus, 0, len(r.order))
	for _, name := range r.order {
		a := r.apps[name]
		s := AppStatus{Name: name, Repo: redact.URL(a.cfg.Repo), Standby: !r.acts(name), Owner: r.shard.owner(name), Environments: len(r.states(name))}
		a.mu.Lock()
		if a.listing != nil {
			s.DefaultBranch, s.Branches = a.listing.Default, len(a.listing.Branches)
		}
		if !a.lastTime.IsZero() {
			t := a.lastTime
			s.LastListing = &t
		}
		if a.lastErr != nil {
			s.ListingError = a.lastErr.Error()
		}
		s.PullRequests = a.forge.openCount()
		if err := a.forge.Err(); err != nil {
			s.ForgeError = err.Error()
		}
		a.mu.Unlock()
		out = append(out, s)
	}
	return out
}

// updatePhaseGauge recomputes arbor_environments and
// arbor_environment_problems from the current status.
func (r *Reconciler) updatePhaseGauge() {
	r.opts.Metrics.environments.Reset()
	r.opts.Metrics.problems.Reset()
	r.addPhaseGauge()
}

// addPhaseGauge adds this Reconciler's environments to arbor_environments
// and arbor_environment_problems (reset first by the caller: a Fleet adds
// every cluster's).
func (r *Reconciler) addPhaseGauge() {
	for _, name := range r.order {
		count := map[diagnose.Reason]float64{}
		for _, e := range r.Environments(name) {
			r.opts.Metrics.environments.WithLabelValues(name, e.Phase).Inc()
			seen := map[diagnose.Reason]bool{}
			for _, p := range e.Problems {
				if !seen[p.Reason] {
					seen[p.Reason] = true
					count[p.Reason]++
				}
			}
		}
		for _, reason := range diagnose.Reasons {
			r.opts.Metrics.problems.WithLabelValues(name, string(reason)).Add(count[reason])
		}
	}
}

// MetricsHandler serves reg's metrics, the environment phase gauge
// recomputed first.
func (r *Reconciler) MetricsHandler(reg *prometheus.Registry) http.Handler {
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.updatePhaseGauge()
		metrics.ServeHTTP(w, req)
	})
}

// ErrNoEnvironment: RequestDeploy found no such app or environment.
var ErrNoEnvironment = workflow.ErrNoEnvironment

// RequestDeploy records a deploy request for app's environment env (its env
// id or branch) on the environment's namespace, where the leader sees it;
// any replica can take it. Errors wrap ErrNoEnvironment when there is no
// such environment.
func (r *Reconciler) RequestDeploy(ctx context.Context, app, env string) (workflow.DeployResponse, error) {
	ns, ok := r.findEnvironment(app, env)
	if !ok {
		return workflow.DeployResponse{}, fmt.Errorf("app %s has no environment %s: %w", app, env, ErrNoEnvironment)
	}
	value, err := workflow.RequestDeploy(ctx, r.opts.Kube, ns, r.opts.Config.Install, time.Now())
	if err != nil {
		return workflow.DeployResponse{}, err
	}
	return workflow.DeployResponse{App: app, Env: env, Namespace: ns, Requested: value}, nil
}
