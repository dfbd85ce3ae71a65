package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/workflow"
)

// Pausing (docs/pausing.md). A paused environment is the reconciler's own
// desired state, not an edit on top of it: its render goes through
// pauseView (workloads at zero, CronJobs suspended, Ingresses to the waking
// endpoint) before the engine applies it, so drift repair keeps it paused
// and a push updates it paused. Whether it should be paused is decided from
// the cache alone (decidePause): the record's pause state, the requests on
// its namespace, the app's schedule and idle time, and the injected clock.

// Requests any replica records on an environment's namespace; the leader
// sees them through its namespace watch and acts.
const (
	// AnnotationPauseRequested is the latest pause or resume request from
	// the API: "pause <time>" or "resume <time>" (RFC 3339).
	AnnotationPauseRequested = "arbor.dev/pause-requested"
	// AnnotationWakeRequested is the time of the latest request for a
	// paused environment's host at the waking endpoint.
	AnnotationWakeRequested = "arbor.dev/wake-requested"
)

// PhasePaused: the environment is scaled to zero; its namespace, volumes,
// Secrets and ConfigMaps are kept.
const PhasePaused = "Paused"

// Why an environment is paused or awake (pauseState.Reason).
const (
	reasonAPI      = "api"      // SetPaused
	reasonSchedule = "schedule" // the app's schedule
	reasonIdle     = "idle"     // idle_after passed
	reasonRequest  = "request"  // a request at the waking endpoint
	reasonPush     = "push"     // a new commit, with wake_on_push
	reasonDeploy   = "deploy"   // deployed awake
)

// Names of the waking route put in a paused environment's namespace.
const (
	wakeObjectName = "arbor-wake"
	wakePortName   = "wake" // the port of server.wake_service
)

// pauseRecheck bounds how long the pause loop sleeps: environments appear
// and records change between schedule boundaries.
const pauseRecheck = time.Minute

// wakeRepeat is how often one environment's wake request is written again
// while its namespace does not yet show the last one.
const wakeRepeat = 5 * time.Second

// pauseState is the pausing part of an environment's record.
type pauseState struct {
	// Paused: the objects in the cluster are the paused view.
	Paused bool   `json:"paused,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Since is when Paused last took its value.
	Since time.Time `json:"since,omitzero"`
	// LastActivity is the last deploy of a new commit or deploy request:
	// where idle_after counts from (or from Since, when later and awake).
	LastActivity time.Time `json:"lastActivity,omitzero"`
	// Hosts are the Ingress hosts routed to the waking endpoint while
	// paused (kept after a resume, so that a late request is told to reload).
	Hosts []string `json:"hosts,omitempty"`
}

// pauseDecision is whether an environment should be paused now.
type pauseDecision struct {
	Paused bool
	Reason string
	// Next is when the decision may change on its own (a schedule
	// boundary, idle_after passing); zero: not by itself.
	Next time.Time
	// Active: pausing is in play (configured for the branch, requested,
	// or recorded); when false the record's pause part is left alone.
	Active bool
}

type pauseEvent struct {
	at     time.Time
	paused bool
	reason string
}

// decidePause decides, from the cache and the clock alone, whether the
// environment should be paused at commit: the latest of its triggers wins
// (the record's own last change, API requests, wake requests, the
// schedule's last boundary, idle_after passing, a push with wake_on_push);
// at a tie, awake.
func (r *Reconciler) decidePause(key envKey, rec *envRecord, commit string) pauseDecision {
	set := r.apps[key.App].cfg.Pause.For(key.Branch)
	now := r.clock.Now()
	var cur *pauseState
	var ann map[string]string
	prevCommit := ""
	if rec != nil {
		ann = rec.Annotations
		if rec.State != nil {
			cur, prevCommit = rec.State.Pause, rec.State.Commit
		}
	}
	d := pauseDecision{Active: set.Active() || cur != nil || ann[AnnotationPauseRequested] != "" || ann[AnnotationWakeRequested] != ""}
	if !d.Active {
		return d
	}
	var evs []pauseEvent
	if cur != nil && !cur.Since.IsZero() {
		evs = append(evs, pauseEvent{cur.Since, cur.Paused, cur.Reason})
	}
	if paused, at, ok := parsePauseRequest(ann[AnnotationPauseRequested]); ok {
		evs = append(evs, pauseEvent{at, paused, reasonAPI})
	}
	if at, err := time.Parse(time.RFC3339Nano, ann[AnnotationWakeRequested]); err == nil {
		evs = append(evs, pauseEvent{at, false, reasonRequest})
	}
	if set.Schedule.Set() {
		running, since := set.Schedule.Since(now)
		evs = append(evs, pauseEvent{since, !running, reasonSchedule})
		d.Next = set.Schedule.Next(now)
	}
	if set.IdleAfter > 0 && cur != nil {
		base := cur.LastActivity
		if !cur.Paused && cur.Since.After(base) {
			base = cur.Since
		}
		if at := r.traffic.activeAt(rec.Namespace); !cur.Paused && at.After(base) {
			base = at // a request seen by the traffic source, or none readable
		}
		if at := base.Add(set.IdleAfter); !base.IsZero() && !at.After(now) {
			evs = append(evs, pauseEvent{at, true, reasonIdle})
		} else if !base.IsZero() && (d.Next.IsZero() || at.Before(d.Next)) {
			d.Next = at
		}
	}
	if set.WakeOnPush && cur != nil && cur.Paused && prevCommit != "" && commit != prevCommit {
		evs = append(evs, pauseEvent{now, false, reasonPush})
	}
	var win *pauseEvent
	for i := range evs {
		e := &evs[i]
		if e.at.After(now) {
			continue // a request stamped ahead of this clock: not yet
		}
		if win == nil || e.at.After(win.at) || (e.at.Equal(win.at) && !e.paused) {
			win = e
		}
	}
	if win != nil {
		d.Paused, d.Reason = win.paused, win.reason
	}
	return d
}

// parsePauseRequest reads AnnotationPauseRequested.
func parsePauseRequest(v string) (paused bool, at time.Time, ok bool) {
	verb, ts, found := strings.Cut(v, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !found || err != nil || (verb != "pause" && verb != "resume") {
		return false, time.Time{}, false
	}
	return verb == "pause", t, true
}

// recordedPaused reports whether the environment's objects are the paused view.
func recordedPaused(st *envState) bool { return st != nil && st.Pause != nil && st.Pause.Paused }

// pauseDue reports, from the cache alone, whether an up-to-date
// environment is paused when it should run, or the other way round.
func (r *Reconciler) pauseDue(key envKey, rec *envRecord) bool {
	d := r.decidePause(key, rec, rec.State.Commit)
	return d.Active && d.Paused != recordedPaused(rec.State)
}

// nextPauseState is the record's pause part once d is applied at commit.
func (r *Reconciler) nextPauseState(rec *envRecord, d pauseDecision, commit string, hosts []string) *pauseState {
	now := r.clock.Now().UTC()
	p := &pauseState{}
	var prev *envState
	if rec != nil && rec.State != nil {
		prev = rec.State
		if prev.Pause != nil {
			*p = *prev.Pause
		}
	}
	_, requested := workflow.Requested(rec.annotations(), prevHandled(prev))
	if prev == nil || prev.Commit != commit || p.LastActivity.IsZero() || requested {
		p.LastActivity = now
	}
	if prev == nil || prev.Pause == nil || p.Paused != d.Paused {
		p.Paused, p.Since, p.Reason = d.Paused, now, orElse(d.Reason, reasonDeploy)
	}
	if len(hosts) > 0 {
		p.Hosts = hosts
	}
	return p
}

// pausings holds, for each environment being reconciled, the pause part
// its record gets when saved (see save).
type pausings struct {
	mu sync.Mutex
	m  map[envKey]*pauseState
}

func (p *pausings) put(key envKey, st *pauseState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[envKey]*pauseState{}
	}
	p.m[key] = st
}

func (p *pausings) get(key envKey) *pauseState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[key]
}

func (p *pausings) drop(key envKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, key)
}

// stampPause gives a record about to be saved the pause part decided for
// its reconcile: a paused environment that is ready shows Paused.
func (r *Reconciler) stampPause(st *envState) {
	p := r.pausing.get(envKey{App: st.App, Branch: st.Branch})
	if p == nil {
		return
	}
	st.Pause = p
	if p.Paused && st.Phase == PhaseReady {
		st.Phase = PhasePaused
	}
}

// preparePause runs in reconcile once the environment is rendered: it
// pauses or resumes an otherwise unchanged environment itself (done true),
// or returns the view of env the lifecycle applies, paused or not, and
// arranges for the record to say so.
func (r *Reconciler) preparePause(ctx context.Context, key envKey, rec *envRecord, env *render.Environment, settings, commit string) (view *render.Environment, done bool, err error) {
	d := r.decidePause(key, rec, commit)
	if !d.Active {
		return env, false, nil
	}
	if !d.Next.IsZero() {
		r.queue.AddAfter(key, max(d.Next.Sub(r.clock.Now()), 0)+time.Second)
	}
	if rec != nil && rec.State != nil {
		st := rec.State
		// (Failed too: a resume that timed out is retried here, with backoff.)
		if st.Commit == commit && st.SettingsHash == settings && (st.Phase == PhaseReady || st.Phase == PhasePaused || st.Phase == PhaseFailed) &&
			recordedPaused(st) != d.Paused && !r.lifecycleDue(key, rec) {
			return nil, true, r.setPause(ctx, key, rec, env, d)
		}
	}
	view, hosts, err := r.pauseView(ctx, env, d.Paused)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", key, err)
	}
	r.pausing.put(key, r.nextPauseState(rec, d, commit, hosts))
	return view, false, nil
}

// setPause pauses or resumes an environment whose commit and settings are
// those recorded. Pausing routes its Ingresses to the waking endpoint first,
// then scales to zero; resuming scales back, waits until every object is
// ready, and only then points the Ingresses back, so that no request
// reaches a pod that is not ready and the waking page turns into the app.
func (r *Reconciler) setPause(ctx context.Context, key envKey, rec *envRecord, env *render.Environment, d pauseDecision) error {
	view, hosts, err := r.pauseView(ctx, env, d.Paused)
	if err != nil {
		return r.failed(ctx, key, copyState(rec.State), fmt.Errorf("%s: %w", key, err))
	}
	var routes, rest []*unstructured.Unstructured
	for _, o := range view.Objects {
		switch {
		case o.GetKind() == "Job":
			// a finished run is not run again
		case isRoute(o):
			routes = append(routes, o)
		default:
			rest = append(rest, o)
		}
	}
	opts := apply.ApplyOptions{Namespace: env.Namespace, NoDiff: true}
	start := r.clock.Now()
	st := copyState(rec.State)
	verb := map[bool]string{true: "pausing", false: "resuming"}[d.Paused]
	r.log.Info(verb+" the environment", "app", key.App, "branch", key.Branch, "namespace", env.Namespace, "reason", d.Reason)
	first, second := rest, routes
	if d.Paused {
		first, second = routes, rest
	} else {
		cp := *st
		cp.Phase, cp.LastTransition = PhaseDeploying, time.Now().UTC()
		r.status.set(key, &cp)
	}
	var written []render.ObjectRef
	cs, err := r.opts.Engine.Apply(ctx, first, opts)
	written = append(written, cs.Written()...)
	if err != nil {
		return r.failed(ctx, key, st, fmt.Errorf("%s: %s: %w", key, verb, err))
	}
	if !d.Paused {
		if err := r.opts.Engine.Wait(ctx, first, apply.WaitOptions{Namespace: env.Namespace, Timeout: r.opts.WaitTimeout}); err != nil {
			// still paused in the record: the Ingresses stay on the waking
			// route, and the resume is tried again with backoff
			return r.failed(ctx, key, st, fmt.Errorf("%s: resuming: wait: %w", key, err))
		}
	}
	cs, err = r.opts.Engine.Apply(ctx, second, opts)
	written = append(written, cs.Written()...)
	if err != nil {
		return r.failed(ctx, key, st, fmt.Errorf("%s: %s: %w", key, verb, err))
	}
	inv := union(st.Inventory, refsOf(view.Objects))
	if !d.Paused {
		if _, err := r.opts.Engine.Prune(ctx, inv, view.Objects, opts); err != nil {
			return r.failed(ctx, key, st, fmt.Errorf("%s: resuming: prune the waking route: %w", key, err))
		}
		inv = keepRendered(inv, view)
	}
	st.Inventory = inv
	st.Pause = r.nextPauseState(rec, d, st.Commit, hosts)
	st.Phase, st.LastError, st.LastTransition = PhaseReady, "", time.Now().UTC()
	if d.Paused {
		st.Phase = PhasePaused
	}
	st.Fingerprints, st.Written, st.AppliedAt = nil, written, start.Add(-clockSkew).UTC().Truncate(time.Second)
	r.pausing.drop(key)
	return r.save(ctx, st)
}

// annotations are the namespace's annotations, nil without a record.
func (rec *envRecord) annotations() map[string]string {
	if rec == nil {
		return nil
	}
	return rec.Annotations
}

func prevHandled(st *envState) string {
	if st == nil {
		return ""
	}
	return st.HandledRequest
}

func copyState(st *envState) *envState {
	cp := *st
	return &cp
}

func refsOf(objs []*unstructured.Unstructured) []render.ObjectRef {
	out := make([]render.ObjectRef, len(objs))
	for i, o := range objs {
		out[i] = apply.RefOf(o)
	}
	return out
}

// pauseLoop queues every environment whose pause state is due to change
// (a schedule boundary, idle_after passing), looking again at the earliest
// such time and at least every pauseRecheck. It reads the cache only: a
// paused environment costs no API request while nothing happens. Apps with
// neither schedule nor idle_after need no loop (API and wake requests
// arrive as namespace events).
func (r *Reconciler) pauseLoop(ctx context.Context) {
	if !slices.ContainsFunc(r.order, func(n string) bool { return r.apps[n].cfg.Pause.Active() }) {
		return
	}
	for {
		wait := pauseRecheck
		if next := r.queueDuePauses(); !next.IsZero() {
			wait = min(wait, max(next.Sub(r.clock.Now()), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-r.clock.After(wait):
		}
	}
}

// queueDuePauses queues the environments to pause or resume now and
// returns the earliest time another one may be due.
func (r *Reconciler) queueDuePauses() time.Time {
	var next time.Time
	for _, name := range r.order {
		if !r.apps[name].cfg.Pause.Active() {
			continue
		}
		for _, rec := range r.cache.envs(name) {
			if rec.State == nil || rec.Deleting {
				continue
			}
			key := envKey{App: name, Branch: rec.Branch}
			d := r.decidePause(key, rec, rec.State.Commit)
			if d.Active && d.Paused != recordedPaused(rec.State) {
				r.queue.Add(key)
			}
			if !d.Next.IsZero() && (next.IsZero() || d.Next.Before(next)) {
				next = d.Next
			}
		}
	}
	return next
}
