package reconciler

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/diagnose"
	"github.com/arbordev/arbor/render"
)

// Names of the cost guard objects in every environment namespace.
const (
	QuotaName      = "arbor-quota"
	LimitRangeName = "arbor-limits"
)

// addCostGuards puts the app's ResourceQuota and LimitRange right after the
// environment's Namespace (and its secret-reader binding): objects of the
// environment like the rest, applied before any workload (no task names
// them, so the workflow applies them first), pruned when the config drops
// them, deleted with the namespace.
func addCostGuards(env *render.Environment, g config.Guards) {
	if len(env.Objects) == 0 || env.Objects[0].GetKind() != "Namespace" {
		return
	}
	var guards []*unstructured.Unstructured
	if len(g.ResourceQuota) > 0 {
		hard := map[string]any{}
		for k, v := range g.ResourceQuota {
			hard[k] = v
		}
		guards = append(guards, guardObject(env, "ResourceQuota", QuotaName, map[string]any{"hard": hard}))
	}
	if len(g.LimitRange) > 0 {
		limit := map[string]any{"type": "Container"}
		for part, values := range g.LimitRange {
			m := map[string]any{}
			for k, v := range values {
				m[k] = v
			}
			limit[config.LimitRangeParts[part]] = m
		}
		guards = append(guards, guardObject(env, "LimitRange", LimitRangeName, map[string]any{"limits": []any{limit}}))
	}
	if len(guards) == 0 {
		return
	}
	at := 1
	if len(env.Objects) > 1 && env.Objects[1].GetName() == apply.SecretReaderBindingName && env.Objects[1].GetKind() == "RoleBinding" {
		at = 2
	}
	objs := make([]*unstructured.Unstructured, 0, len(env.Objects)+len(guards))
	objs = append(objs, env.Objects[:at]...)
	objs = append(objs, guards...)
	env.Objects = append(objs, env.Objects[at:]...)
}

func guardObject(env *render.Environment, kind, name string, spec map[string]any) *unstructured.Unstructured {
	labels := apply.OwnerOf(env.Objects[0]) // install, app and env: whose it is
	labels[apply.LabelManagedBy] = apply.ManagedByValue
	o := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": env.Namespace},
		"spec":     spec,
	}}
	o.SetLabels(labels)
	return o
}

// slots admits an app's branches to environments under max_environments:
// every environment in the cluster holds a slot, and so does a branch
// admitted until its namespace shows in the cache. The free slots go to the
// listed branches that want an environment, the default branch first, then
// those whose newest commit is oldest (ties by name): the newest wait.
type slots struct {
	mu       sync.Mutex
	admitted map[string]bool      // branches let through whose namespace may not be cached yet
	waiting  map[string]bool      // branches refused a slot, queued again when one frees
	declined map[string]string    // branch → the commit found to want no environment (no configuration, filtered out, invalid)
	times    map[string]time.Time // commit → its committer time
}

// admit reports whether key's branch, which has no environment yet, may get
// one now; when not, wait is what it waits for (the slots in use). The
// caller has a valid render for commit.
func (r *Reconciler) admit(ctx context.Context, a *appRunner, key envKey, lst *listing) (wait string, ok bool) {
	limit := r.opts.Config.GuardsFor(a.cfg).MaxEnvironments
	if limit <= 0 {
		return "", true
	}
	held := map[string]bool{}
	for _, rec := range r.cache.envs(a.cfg.Name) {
		if !rec.Deleting {
			held[rec.Branch] = true
		}
	}
	s := &a.slots
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	for b := range s.admitted {
		if held[b] {
			delete(s.admitted, b) // the cache shows it now: counted as held
		}
	}
	if held[key.Branch] || s.admitted[key.Branch] {
		return "", true
	}
	inUse := len(held) + len(s.admitted)
	free := limit - inUse
	if free <= 0 {
		s.waiting[key.Branch] = true
		return slotWait(a.cfg.Name, inUse, limit, 0), false
	}
	if rank := s.rank(ctx, a, lst, held, key.Branch); rank >= free {
		s.waiting[key.Branch] = true
		return slotWait(a.cfg.Name, inUse, limit, rank), false
	}
	delete(s.waiting, key.Branch)
	s.admitted[key.Branch] = true
	return "", true
}

// slotWait is the message of a branch waiting for a slot: the slots in
// use, and how many branches go first when some are free.
func slotWait(app string, inUse, limit, ahead int) string {
	m := fmt.Sprintf("%s: %d of %d environments of %s in use", slotMessagePrefix, inUse, limit, app)
	switch {
	case ahead == 1:
		m += ", 1 branch before this one"
	case ahead > 1:
		m += fmt.Sprintf(", %d branches before this one", ahead)
	}
	return m
}

func (s *slots) init() {
	if s.admitted == nil {
		s.admitted, s.waiting, s.declined, s.times = map[string]bool{}, map[string]bool{}, map[string]string{}, map[string]time.Time{}
	}
}

// rank is branch's place among the listed branches that want a slot and
// hold none; s.mu is held.
func (s *slots) rank(ctx context.Context, a *appRunner, lst *listing, held map[string]bool, branch string) int {
	type cand struct {
		name string
		when time.Time
	}
	var cands []cand
	times := map[string]time.Time{}
	for b, commit := range lst.Branches {
		if held[b] || s.admitted[b] || s.declined[b] == commit || !a.cfg.Branches.Allows(b) || !a.forge.deploys(lst.PRs, b) {
			continue
		}
		when, ok := s.times[commit]
		if !ok {
			t, err := a.src.CommitTime(ctx, commit)
			if err != nil {
				t = time.Now() // unknown: treated as the newest
			}
			when = t
		}
		times[commit] = when
		if b == lst.Default {
			when = time.Time{}
		}
		cands = append(cands, cand{b, when})
	}
	s.times = times // only the listed commits' times are kept
	sort.Slice(cands, func(i, j int) bool {
		if !cands[i].when.Equal(cands[j].when) {
			return cands[i].when.Before(cands[j].when)
		}
		return cands[i].name < cands[j].name
	})
	for i, c := range cands {
		if c.name == branch {
			return i
		}
	}
	return len(cands)
}

// release forgets a branch that no longer wants an environment (its
// branch gone, filtered out, without configuration, invalid at commit), so
// that it neither holds a slot nor goes before the branches that want one.
func (a *appRunner) release(branch, commit string) {
	a.slots.mu.Lock()
	defer a.slots.mu.Unlock()
	a.slots.init()
	delete(a.slots.admitted, branch)
	delete(a.slots.waiting, branch)
	if commit == "" {
		delete(a.slots.declined, branch)
	} else {
		a.slots.declined[branch] = commit
	}
}

// requeueWaiting queues every waiting branch of app: a slot may be free.
func (r *Reconciler) requeueWaiting(app string) {
	a := r.apps[app]
	if a == nil || !r.leading.Load() {
		return
	}
	a.slots.mu.Lock()
	branches := make([]string, 0, len(a.slots.waiting))
	for b := range a.slots.waiting {
		branches = append(branches, b)
	}
	a.slots.mu.Unlock()
	for _, b := range branches {
		r.queue.Add(envKey{App: app, Branch: b})
	}
}

// slotMessagePrefix begins the message of a branch waiting for a slot
// (PhaseWaiting also waits for images, with their own message).
const slotMessagePrefix = "Waiting for a slot"

// wait records that key's branch waits for a slot at commit, with msg
// (slotWait's): a change of either is a change of status, and makes the
// forge report due.
func (r *Reconciler) wait(key envKey, commit, msg string) {
	if st := r.status.get(key); st != nil && st.Phase == PhaseWaiting && st.Message == msg && st.TargetCommit == commit {
		return
	}
	r.status.set(key, &envState{App: key.App, Branch: key.Branch, Phase: PhaseWaiting, Message: msg,
		TargetCommit: commit, LastTransition: time.Now().UTC()})
}

// waitingProblem is what status says of a waiting branch.
func (r *Reconciler) waitingProblem(st *envState) []diagnose.Problem {
	limit := 0
	if a := r.apps[st.App]; a != nil {
		limit = r.opts.Config.GuardsFor(a.cfg).MaxEnvironments
	}
	return []diagnose.Problem{{
		Kind: "environment", Name: st.Branch, Reason: diagnose.WaitingForSlot, Since: st.LastTransition,
		Message: fmt.Sprintf("app %s already runs its max_environments (%d); this branch is deployed when one of them goes away", st.App, limit),
	}}
}
