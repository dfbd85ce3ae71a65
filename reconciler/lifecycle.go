package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/environment"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/state"
	"github.com/arbordev/arbor/workflow"
)

// lifecycle is what happens to a rendered environment whose branch is
// listed (package workflow): expiry, the stage a change calls for, the hold
// of auto_deploy: false, deploy requests, or only the repair of drift.
func (r *Reconciler) lifecycle(ctx context.Context, key envKey, rec *envRecord, env *render.Environment, settings, commit string) error {
	a := r.apps[key.App]
	when, err := a.src.CommitTime(ctx, commit)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	in := workflow.PlanInput{Env: env, Last: lastRun(rec), CommitTime: when, Now: time.Now()}
	if rec != nil {
		in.Namespace = rec.Annotations
		if rec.State != nil {
			in.HandledRequest = rec.State.HandledRequest
		}
	}
	plan, err := workflow.PlanEnvironment(in)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if !plan.ExpiresAt.IsZero() {
		r.queue.AddAfter(key, time.Until(plan.ExpiresAt)+time.Second)
	}
	switch plan.Action {
	case workflow.ActionTeardown:
		r.log.Info("environment expired; tearing it down", "app", key.App, "branch", key.Branch, "reason", plan.Reason)
		if err := r.remove(ctx, key, rec); err != nil {
			return err
		}
		r.status.set(key, &envState{App: key.App, Branch: key.Branch, Commit: commit, Phase: PhaseExpired,
			LastError: plan.Reason, LastTransition: time.Now().UTC()})
		return nil
	case workflow.ActionRun:
		return r.runStage(ctx, key, rec, env, settings, plan)
	case workflow.ActionHold:
		return r.hold(ctx, key, rec, env, plan.ExpiresAt)
	}
	if in.Last.Exists && in.Last.SetupDone && !changedSince(in.Last, env) &&
		(rec.State.Phase == PhaseReady || rec.State.Phase == PhasePaused) && r.drifted(rec.State) {
		return r.repair(ctx, key, rec, env)
	}
	if rec != nil && rec.State != nil && !rec.State.ExpiresAt.Equal(plan.ExpiresAt) {
		// kept, or no longer kept: remember when it expires
		st := *rec.State
		st.ExpiresAt = plan.ExpiresAt
		return r.save(ctx, &st)
	}
	if !in.Last.Exists {
		// expired before it was created: nothing until the next push
		r.status.set(key, &envState{App: key.App, Branch: key.Branch, Commit: commit, Phase: PhaseExpired,
			LastError: plan.Reason, LastTransition: time.Now().UTC()})
	}
	return nil // or a failed setup waiting for a change or a request
}

// lastRun is the record's last finished run; records of older daemons count
// as a successful run of what they hold when they were ready (or paused).
func lastRun(rec *envRecord) workflow.Last {
	if rec == nil || rec.State == nil {
		return workflow.Last{}
	}
	if rec.State.LastRun != nil {
		return *rec.State.LastRun
	}
	st := rec.State
	if st.Phase != PhaseReady && st.Phase != PhasePaused {
		// No run of this environment finished: its first setup was
		// interrupted (the record goes ahead of the run; a replica that
		// hands the app over cancels it) or failed on an error retried with
		// backoff. Not a halted setup, which records its run: run it again.
		return workflow.Last{Exists: true}
	}
	return workflow.Last{Exists: true, Commit: st.Commit, ConfigHash: st.ConfigHash, SetupDone: true}
}

func changedSince(last workflow.Last, env *render.Environment) bool {
	return last.Commit != env.Commit || last.ConfigHash != env.ConfigHash || !slices.Equal(last.Imports, env.Imports)
}

// runStage runs a workflow stage, then prunes what the environment no
// longer holds, and records the run. A halted workflow is recorded and not
// retried (a failed setup waits for a change or a deploy request); any
// other error is retried with backoff.
func (r *Reconciler) runStage(ctx context.Context, key envKey, rec *envRecord, env *render.Environment, settings string, plan workflow.Plan) error {
	var prev []render.ObjectRef
	var before *envState
	switch {
	case rec != nil && rec.State != nil:
		prev, before = rec.State.Inventory, rec.State
	case rec != nil:
		// a first run stopped before its first record: what it may have created
		prev = r.cache.objectsIn(rec.Namespace)
	}
	st := stateOf(env, settings, PhaseDeploying)
	if why := r.hostHeld(env); why != "" {
		st.Phase, st.LastError, st.LastTransition = PhaseConflict, fmt.Sprintf("%s: %s", key, why), time.Now().UTC()
		r.status.set(key, st)
		return errors.New(st.LastError)
	}
	st.Inventory = union(prev, st.Inventory) // written ahead: everything this run may create
	st.LastRun = lastRunPtr(lastRun(rec))
	if before != nil {
		st.HandledRequest = before.HandledRequest
	}
	st.Workflow = &workflow.Progress{App: env.App, Stage: plan.Stage, Outcome: state.OutcomeRunning}
	st.ExpiresAt = plan.ExpiresAt
	fresh := false
	if rec == nil || rec.State == nil {
		// (The status says Deploying only once the namespace is known to be
		// this environment's: a Conflict does not flicker on each retry.)
		var err error
		if fresh, err = r.claimNamespace(ctx, env.Objects[0]); err != nil {
			return r.failed(ctx, key, st, fmt.Errorf("%s: %w", key, err))
		}
	}
	r.status.set(key, st)
	// The record goes ahead of the run, naming everything it may create. A
	// new namespace whose objects are all of kinds the cache watches can do
	// without: were arbor to stop mid-run, the cache would find them again.
	if !fresh || !r.cache.watchesAll(env.Objects) {
		if err := r.save(ctx, st); err != nil {
			return r.failed(ctx, key, st, fmt.Errorf("%s: %w", key, err))
		}
	}
	r.log.Info("running workflow", "app", key.App, "branch", key.Branch, "stage", plan.Stage, "reason", plan.Reason, "commit", short(env.Commit))
	report := func(p workflow.Progress) {
		cp := *st
		cp.Workflow = &p
		r.status.set(key, &cp)
	}
	start := time.Now()
	res, err := r.opts.Workflows.Run(ctx, workflow.Run{Env: env, Stage: plan.Stage, Inventory: prev, Report: report, Fresh: fresh})
	if res != nil {
		p := res.Progress
		st.Workflow = &p
	}
	last := workflow.Last{Exists: true, Commit: env.Commit, ConfigHash: env.ConfigHash, Imports: env.Imports,
		SetupDone: plan.Stage == render.StageSetup || (st.LastRun != nil && st.LastRun.SetupDone)}
	switch {
	case errors.Is(err, workflow.ErrHalted):
		last.SetupDone = plan.Stage != render.StageSetup && last.SetupDone
		st.LastRun, st.HandledRequest = &last, orElse(plan.Request, st.HandledRequest)
		_ = r.failed(ctx, key, st, err)
		r.log.Warn("workflow halted; waiting for a change or a deploy request", "app", key.App, "branch", key.Branch, "error", err)
		return nil
	case err != nil:
		return r.failed(ctx, key, st, err)
	}
	if _, err := r.opts.Engine.Prune(ctx, prev, env.Objects, apply.ApplyOptions{Namespace: env.Namespace}); err != nil {
		return r.failed(ctx, key, st, fmt.Errorf("%s: prune: %w", key, err))
	}
	st.Inventory = keepRendered(union(prev, res.Applied), env)
	st.Phase, st.LastError, st.LastTransition = PhaseReady, "", time.Now().UTC()
	st.Written, st.AppliedAt = res.Written, start.Add(-clockSkew).UTC().Truncate(time.Second)
	st.LastRun, st.HandledRequest = &last, orElse(plan.Request, st.HandledRequest)
	// The cache sees the run's last writes within moments: then the
	// fingerprints go into this record and need no write of their own.
	r.awaitCache(ctx, st, cacheCatchUp)
	if !r.drifted(st) {
		r.takeFingerprints(st)
	}
	r.log.Info("environment ready", "app", key.App, "branch", key.Branch, "commit", short(env.Commit),
		"namespace", env.Namespace, "stage", plan.Stage, "outcome", res.Progress.Outcome)
	r.imports.Set(workflow.EnvKey(key), env.Imports)
	return r.save(ctx, st)
}

// hold records that a change waits for a deploy request (auto_deploy:
// false), writing the record only when the held commit changes.
func (r *Reconciler) hold(ctx context.Context, key envKey, rec *envRecord, env *render.Environment, expires time.Time) error {
	if rec == nil || rec.State == nil || (rec.State.HeldCommit == env.Commit && rec.State.ExpiresAt.Equal(expires)) {
		return nil
	}
	st := *rec.State
	st.HeldCommit, st.ExpiresAt = env.Commit, expires
	r.log.Info("auto_deploy is false: the change waits for a deploy request", "app", key.App, "branch", key.Branch, "commit", short(env.Commit))
	return r.save(ctx, &st)
}

// repair re-applies what drifted from an environment that is up to date:
// every object it holds except Job runs (a completed run is not run again),
// then waits and records the objects' new fingerprints.
func (r *Reconciler) repair(ctx context.Context, key envKey, rec *envRecord, env *render.Environment) error {
	held := map[render.ObjectRef]bool{}
	for _, ref := range rec.State.Inventory {
		held[ref] = true
	}
	var objs []*unstructured.Unstructured
	for _, o := range env.Objects {
		if ref := apply.RefOf(o); held[ref] && ref.Kind != "Job" {
			objs = append(objs, o)
		}
	}
	start := time.Now()
	cs, err := r.opts.Engine.Apply(ctx, objs, apply.ApplyOptions{Namespace: env.Namespace, NoDiff: true})
	written := cs.Written()
	if err != nil {
		return fmt.Errorf("%s: repair: %w", key, err)
	}
	if err := r.opts.Engine.Wait(ctx, objs, apply.WaitOptions{Namespace: env.Namespace, Timeout: r.opts.WaitTimeout}); err != nil {
		return fmt.Errorf("%s: repair: wait: %w", key, err)
	}
	st := *rec.State
	st.Fingerprints, st.Phase, st.LastError = nil, PhaseReady, ""
	st.Written, st.AppliedAt = written, start.Add(-clockSkew).UTC().Truncate(time.Second)
	st.Inventory = slices.DeleteFunc(slices.Clone(st.Inventory), func(ref render.ObjectRef) bool {
		_, watched, ok := r.cache.fingerprint(ref)
		return ref.Kind == "Job" && watched && !ok // a finished run Kubernetes removed (ttlSecondsAfterFinished)
	})
	return r.save(ctx, &st)
}

// teardownEnv runs the teardown stage of the environment's last render
// (or, in a restarted daemon, of its recorded commit) before it is deleted;
// with neither, the environment is deleted directly.
func (r *Reconciler) teardownEnv(ctx context.Context, key envKey, rec *envRecord, inv []render.ObjectRef) (removed bool, err error) {
	env := r.renders.latest(key)
	if env == nil {
		env = r.renderRecorded(ctx, key, rec)
	}
	if env == nil || env.Namespace != rec.Namespace {
		return false, nil
	}
	r.log.Info("running workflow", "app", key.App, "branch", key.Branch, "stage", render.StageTeardown, "commit", short(env.Commit))
	report := func(p workflow.Progress) {
		r.status.set(key, &envState{App: key.App, Branch: key.Branch, Namespace: rec.Namespace, EnvID: rec.EnvID,
			Phase: PhaseDeleting, LastTransition: time.Now().UTC(), Workflow: &p})
	}
	res, err := r.opts.Workflows.Run(ctx, workflow.Run{Env: env, Stage: render.StageTeardown, Inventory: inv, Report: report})
	if err != nil && !errors.Is(err, workflow.ErrHalted) {
		return false, err
	}
	if err != nil {
		r.log.Warn("teardown halted; deleting the environment anyway", "app", key.App, "branch", key.Branch, "error", err)
	}
	return res.Removed, nil
}

// renderRecorded renders the commit the environment's record names, for
// the teardown of a branch that went while no render of it was in memory (a
// restarted daemon): the commit stays readable in the repository, or in
// arbor's cache of it, after its branch is gone. Nil when it cannot be
// rendered; the environment is then deleted without its teardown.
func (r *Reconciler) renderRecorded(ctx context.Context, key envKey, rec *envRecord) *render.Environment {
	a := r.apps[key.App]
	lst := a.current()
	if rec.State == nil || rec.State.Commit == "" || lst == nil {
		return nil
	}
	env, findings, err := r.build(ctx, a, key.Branch, rec.State.Commit, lst.Default, recordedPins(rec.State))
	if err == nil && findings.HasErrors() {
		err = errors.New(findings.Errors().Error())
	}
	if err != nil {
		r.log.Warn("cannot render the environment's last commit: deleting it without its teardown",
			"app", key.App, "branch", key.Branch, "commit", short(rec.State.Commit), "error", err)
		return nil
	}
	return env
}

// queueImporters sends a moved or created branch of app to the environments
// importing it: a new commit on an imported branch patches them, a branch
// created or deleted may change their branch choice.
func (r *Reconciler) queueImporters(app string, prev *listing, branches map[string]string) {
	var old map[string]string
	if prev != nil {
		old = prev.Branches
	}
	setChanged := len(old) != len(branches)
	for b, c := range branches {
		oc, ok := old[b]
		if !ok {
			setChanged = true
		}
		if ok && oc != c {
			for _, k := range r.imports.Importers(app, b) {
				r.queue.Add(envKey(k))
			}
		}
	}
	if setChanged {
		for _, k := range r.imports.ImportersOfApp(app) {
			r.queue.Add(envKey(k))
		}
	}
}

// resolveImports loads every app the template imports at the branch chosen
// for an environment of branch (docs/release-yaml.md#app-imports).
func (r *Reconciler) resolveImports(ctx context.Context, importer string, t *schema.Template, branch string) ([]render.Import, error) {
	out := make([]render.Import, 0, len(t.AppImports))
	for _, ai := range t.AppImports {
		a, ok := r.apps[ai.Name]
		if !ok {
			return nil, fmt.Errorf("app_imports %s: no app of that name in the daemon configuration", ai.Name)
		}
		if !slices.Contains(a.cfg.AllowImportBy, importer) {
			return nil, fmt.Errorf("app_imports %s: app %s does not allow imports by %s (add %s to its allow_import_by in the daemon config: the importer receives its secrets_from values)", ai.Name, ai.Name, importer, importer)
		}
		lst := a.current()
		if lst == nil {
			return nil, fmt.Errorf("app_imports %s: its branches are not listed yet", ai.Name)
		}
		tracking, err := r.trackingBranch(ctx, a, lst)
		if err != nil {
			return nil, err
		}
		choice, err := workflow.ChooseImportBranch(ai.Branch, branch,
			workflow.ImportedRepo{App: ai.Name, Branches: lst.Branches, DefaultBranch: lst.Default, Tracking: tracking})
		if err != nil {
			return nil, err
		}
		im, err := r.loadImport(ctx, a, ai, choice)
		if err != nil {
			return nil, err
		}
		// Its remote charts, from the repositories its own config allows.
		if im.RemoteCharts, err = r.fetchCharts(ctx, a, im.Config); err != nil {
			return nil, fmt.Errorf("app_imports %s@%s: %w", a.cfg.Name, choice.Branch, err)
		}
		out = append(out, im)
	}
	return out, nil
}

func (r *Reconciler) loadImport(ctx context.Context, a *appRunner, ai schema.AppImport, choice workflow.BranchChoice) (render.Import, error) {
	tree, err := a.src.Tree(ctx, choice.Commit)
	if err != nil {
		return render.Import{}, fmt.Errorf("app_imports %s@%s: %w", a.cfg.Name, choice.Branch, err)
	}
	secrets, _, err := r.secrets(ctx, a)
	if err != nil {
		return render.Import{}, fmt.Errorf("app_imports %s@%s: %w", a.cfg.Name, choice.Branch, err)
	}
	im, _, err := environment.Import(environment.Imported{
		Import: ai, Branch: choice.Branch, Commit: choice.Commit, Tree: tree, Path: a.cfg.Path,
		Load: loadOptions(a.cfg), Parameters: a.cfg.Parameters, Secrets: secrets,
	})
	return im, err
}

// trackingBranch is an app's tracking_branch, read from its template on its
// default branch ("" when unset or unreadable there).
func (r *Reconciler) trackingBranch(ctx context.Context, a *appRunner, lst *listing) (string, error) {
	commit := lst.Branches[lst.Default]
	if commit == "" {
		return "", nil
	}
	tree, err := a.src.Tree(ctx, commit)
	if err != nil {
		return "", fmt.Errorf("app_imports %s@%s: %w", a.cfg.Name, lst.Default, err)
	}
	cfg, findings, err := r.opts.Load(tree, a.cfg.Path, loadOptions(a.cfg))
	if err != nil || findings.HasErrors() || cfg == nil || cfg.Template == nil {
		return "", nil
	}
	return cfg.Template.TrackingBranch, nil
}

// findEnvironment resolves an environment of app by env id or branch, for
// the deploy API; it reads the cache, so any replica answers.
func (r *Reconciler) findEnvironment(app, env string) (string, bool) {
	if _, ok := r.apps[app]; !ok {
		return "", false
	}
	for _, rec := range r.cache.envs(app) {
		if rec.EnvID == env || rec.Branch == env {
			return rec.Namespace, true
		}
	}
	return "", false
}

// keepRendered keeps the references of inv that the render still holds.
func keepRendered(inv []render.ObjectRef, env *render.Environment) []render.ObjectRef {
	want := map[render.ObjectRef]bool{}
	for _, o := range env.Objects {
		want[apply.RefOf(o)] = true
	}
	out := inv[:0:0]
	for _, ref := range inv {
		if want[ref] {
			out = append(out, ref)
		}
	}
	return out
}

func lastRunPtr(l workflow.Last) *workflow.Last {
	if !l.Exists {
		return nil
	}
	return &l
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// lifecycleDue reports, from the cache alone, whether an up-to-date
// environment needs its lifecycle looked at: a pending deploy request, its
// expiry time passed, or an imported branch that moved (or a branch of the
// environment's name appearing in an imported app).
func (r *Reconciler) lifecycleDue(key envKey, rec *envRecord) bool {
	st := rec.State
	if _, pending := workflow.Requested(rec.Annotations, st.HandledRequest); pending {
		return true
	}
	if !st.ExpiresAt.IsZero() && !rec.Keep && !time.Now().Before(st.ExpiresAt) {
		return true
	}
	if st.ExpiresAfter != "" && st.ExpiresAt.IsZero() != rec.Keep {
		return true // arbor.dev/keep was set or removed: the expiry time changes
	}
	if ext := workflow.ExtendedUntil(rec.Annotations); st.ExpiresAfter != "" && !rec.Keep && ext.After(st.ExpiresAt) {
		return true // extended through the API: record the later expiry
	}
	if st.LastRun == nil {
		return false
	}
	r.imports.Set(workflow.EnvKey(key), st.LastRun.Imports) // a restarted daemon learns its importers here
	for _, im := range st.LastRun.Imports {
		a, ok := r.apps[im.App]
		if !ok {
			continue
		}
		lst := a.current()
		if lst == nil {
			continue
		}
		if lst.Branches[im.Branch] != im.Commit {
			return true
		}
		if _, same := lst.Branches[key.Branch]; same && im.Branch != key.Branch {
			return true
		}
	}
	return false
}

// claimNamespace applies the environment's Namespace object alone, checking
// its owner labels first, and reports whether this call created it. A
// namespace the cache does not hold is claimed with a create before any read.
func (r *Reconciler) claimNamespace(ctx context.Context, ns *unstructured.Unstructured) (bool, error) {
	_, cached := r.cache.namespace(ns.GetName())
	opts := apply.ApplyOptions{Namespace: ns.GetName(), NoDiff: true, Owner: apply.OwnerOf(ns), ClaimFirst: !cached}
	cs, err := r.opts.Engine.Apply(ctx, []*unstructured.Unstructured{ns}, opts)
	return err == nil && cs.Count(apply.Created) == 1, err
}
