package reconciler

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/arbordev/arbor/workflow"
)

// PauseResponse is the answer to a pause or resume request.
type PauseResponse struct {
	App       string `json:"app"`
	Env       string `json:"env"`
	Namespace string `json:"namespace"`
	// Paused is the state requested.
	Paused bool `json:"paused"`
	// Requested is the request recorded on the namespace.
	Requested string `json:"requested"`
	// Phase is the environment's phase when the request was recorded.
	Phase   string `json:"phase,omitempty"`
	Message string `json:"message"`
}

// SetPaused records a request to pause (or resume) app's environment env
// (its env id or branch) on its namespace, where the leader sees it; any
// replica can take it. The leader scales the environment to zero (or back)
// shortly after. Errors wrap ErrNoEnvironment when there is no such
// environment.
func (r *Reconciler) SetPaused(ctx context.Context, app, env string, paused bool) (PauseResponse, error) {
	ns, ok := r.findEnvironment(app, env)
	if !ok {
		return PauseResponse{}, fmt.Errorf("app %s has no environment %s: %w", app, env, ErrNoEnvironment)
	}
	verb := map[bool]string{true: "pause", false: "resume"}[paused]
	value := verb + " " + r.clock.Now().UTC().Format(time.RFC3339Nano)
	if err := workflow.Annotate(ctx, r.opts.Kube, ns, r.opts.Config.Install, "pause", map[string]string{AnnotationPauseRequested: value}); err != nil {
		return PauseResponse{}, err
	}
	resp := PauseResponse{App: app, Env: env, Namespace: ns, Paused: paused, Requested: value}
	if rec := r.cache.envOfNamespace(ns); rec != nil && rec.State != nil {
		resp.Phase = rec.State.Phase
	}
	if paused {
		resp.Message = "pause requested: the environment's workloads scale to zero; its volumes, Secrets and ConfigMaps stay"
	} else {
		resp.Message = "resume requested: the environment's workloads scale back as rendered"
	}
	return resp, nil
}

// WakeResult is what the waking endpoint learns of a host.
type WakeResult struct {
	// Found: an environment of this install was paused serving the host.
	Found bool
	// Awake: it has resumed and its Ingresses point back at it.
	Awake       bool
	App, Branch string
}

// Wake handles a request for host at the waking endpoint: when it is
// exactly a host of a paused environment of this install, a wake request is
// recorded on that environment's namespace (once; again only after
// wakeRepeat while the namespace does not show it). Any other host wakes
// nothing. It reads the cache; any replica answers.
func (r *Reconciler) Wake(ctx context.Context, host string) (WakeResult, error) {
	host = normalizeHost(host)
	if host == "" {
		return WakeResult{}, nil
	}
	for _, st := range r.cache.allStates() {
		if st.Pause == nil || !slices.Contains(st.Pause.Hosts, host) || r.apps[st.App] == nil {
			continue
		}
		res := WakeResult{Found: true, App: st.App, Branch: st.Branch, Awake: !st.Pause.Paused}
		if res.Awake {
			return res, nil
		}
		rec := r.cache.envOfNamespace(st.Namespace)
		if rec == nil {
			return WakeResult{}, nil
		}
		if at, err := time.Parse(time.RFC3339Nano, rec.Annotations[AnnotationWakeRequested]); err == nil && !at.Before(st.Pause.Since) {
			return res, nil // asked already
		}
		if !r.wakeDue(st.Namespace, st.Pause.Since) {
			return res, nil
		}
		value := r.clock.Now().UTC().Format(time.RFC3339Nano)
		if err := workflow.Annotate(ctx, r.opts.Kube, st.Namespace, r.opts.Config.Install, "wake", map[string]string{AnnotationWakeRequested: value}); err != nil {
			r.wakeFailed(st.Namespace) // the page's next reload tries again
			return res, err
		}
		r.log.Info("wake request", "app", st.App, "branch", st.Branch, "host", host)
		return res, nil
	}
	return WakeResult{}, nil
}

// wakeDue rate-limits the wake requests of one pause (of ns, paused
// since) while the cache catches up. Only the requests of the last
// wakeRepeat are kept: every namespace ever woken is not.
func (r *Reconciler) wakeDue(ns string, since time.Time) bool {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	if r.wakeSent == nil {
		r.wakeSent = map[string]wakeSent{}
	}
	now := r.clock.Now()
	if w, ok := r.wakeSent[ns]; ok && w.since.Equal(since) && now.Sub(w.at) < wakeRepeat {
		return false
	}
	for k, w := range r.wakeSent {
		if now.Sub(w.at) >= wakeRepeat {
			delete(r.wakeSent, k) // no longer holds a request back
		}
	}
	r.wakeSent[ns] = wakeSent{since: since, at: now}
	return true
}

// wakeFailed forgets a wake request that was not written.
func (r *Reconciler) wakeFailed(ns string) {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	delete(r.wakeSent, ns)
}

// wakeSent is the last wake request written for a namespace: when, and
// for the pause that began at since.
type wakeSent struct{ since, at time.Time }

// normalizeHost is a Host header as Ingress rules write hosts: lower case,
// without port or trailing dot.
func normalizeHost(h string) string {
	if hp, _, err := net.SplitHostPort(h); err == nil {
		h = hp
	}
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}
