package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/environment"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/workflow"
)

// Results of a reconcile, the result label of arbor_reconcile_duration_seconds.
const (
	resultUnchanged = "unchanged"
	resultApplied   = "applied"
	resultDeleted   = "deleted"
	resultInvalid   = "invalid"
	resultError     = "error"
)

// reconcile brings one environment to its branch's newest commit, or removes
// it when its branch is gone.
func (r *Reconciler) reconcile(ctx context.Context, key envKey) (err error) {
	start := time.Now()
	result := resultUnchanged
	defer func() {
		if err != nil {
			result = resultError
		}
		r.opts.Metrics.reconcileDuration.WithLabelValues(key.App, result).Observe(time.Since(start).Seconds())
	}()
	a := r.apps[key.App]
	lst := a.current()
	if lst == nil {
		return nil // no successful listing yet: nothing is decided without one
	}
	rec := r.cache.env(key.App, key.Branch)
	if rec != nil {
		// What this leader last wrote is newer than the cache's copy.
		if st := r.status.get(key); st != nil && st.Namespace == rec.Namespace {
			rec.State = st
		}
	}
	commit, listed := lst.Branches[key.Branch]
	if !listed || !a.cfg.Branches.Allows(key.Branch) || !a.forge.deploys(lst.PRs, key.Branch) {
		r.placed.forget(key)
		result = resultDeleted
		if err := r.forgetDeletion(ctx, key); err != nil {
			return err
		}
		return r.remove(ctx, key, rec)
	}
	if done, deleted, err := r.deleteOnRequest(ctx, key, rec, commit); done || err != nil {
		if deleted {
			result = resultDeleted
		}
		return err
	}
	if rec != nil && rec.Deleting {
		// The branch is back before its old namespace is gone: look again
		// in a while (the namespace's own events during its deletion
		// queue nothing; see namespaceChanged).
		if st := r.status.get(key); st == nil || st.Phase != PhaseExpired {
			r.status.set(key, &envState{App: key.App, Branch: key.Branch, Namespace: rec.Namespace, EnvID: rec.EnvID,
				Phase: PhasePending, LastTransition: time.Now().UTC(),
				LastError: fmt.Sprintf("waiting for namespace %s to finish terminating", rec.Namespace)})
		}
		r.queue.AddAfter(key, terminatingPoll)
		return nil
	}
	if r.placedElsewhere(key, commit) {
		// Another cluster's: a commit already loaded and sent there.
		if r.keptUntilMoved(key, rec) {
			return nil
		}
		if rec != nil {
			result = resultDeleted
		}
		return r.remove(ctx, key, rec)
	}
	settings := a.settings
	switch r.check(key, rec, commit, settings) {
	case verdictUpToDate:
		return nil
	case verdictAdopt:
		return r.adopt(ctx, rec)
	case verdictKnownInvalid:
		return nil
	}
	env, findings, err := r.build(ctx, a, key.Branch, commit, lst.Default, r.resolvePins(rec))
	var pending *imagesPending
	var noImage *imageFailure
	switch {
	case errors.Is(err, errOtherCluster) && r.keptUntilMoved(key, rec):
		return nil
	case errors.Is(err, ErrNoConfig), errors.Is(err, errFilteredOut), errors.Is(err, errOtherCluster):
		if rec != nil {
			result = resultDeleted
		}
		return r.remove(ctx, key, rec)
	case (err != nil || findings.HasErrors()) && r.quiet(a, key, rec, commit):
		return nil // the app's own cluster reports it
	case findings.HasErrors():
		if rec == nil {
			a.release(key.Branch, commit) // an invalid new branch takes no slot
		}
		result = resultInvalid
		return r.invalid(ctx, key, rec, commit, settings, findings)
	case errors.As(err, &pending):
		return r.waitForImages(ctx, key, rec, commit, pending.message)
	case errors.As(err, &noImage):
		return r.imagesFailed(ctx, key, rec, commit, noImage)
	case err != nil:
		r.fail(ctx, key, rec, commit, err)
		return err
	}
	if rec == nil {
		if msg, ok := r.admit(ctx, a, key, lst); !ok {
			r.wait(key, commit, msg) // max_environments: nothing is applied until a slot frees
			return nil
		}
	}
	result = resultApplied
	defer r.pausing.drop(key)
	env, done, err := r.preparePause(ctx, key, rec, env, settings, commit)
	switch {
	case err != nil:
		return r.failed(ctx, key, stateFrom(key, rec, commit), err) // recorded once, retried with backoff
	case done:
		return nil
	}
	return r.lifecycle(ctx, key, rec, env, settings, commit)
}

type verdict int

const (
	verdictChanged      verdict = iota // build and apply
	verdictUpToDate                    // nothing to do
	verdictAdopt                       // applied and ready; record the objects' fingerprints
	verdictKnownInvalid                // the branch's commit is already known to be invalid
)

// check decides from the cache alone, with no API request, whether the
// environment needs work: same commit and settings as last applied, ready,
// and every watched object present and untouched since arbor last saw it.
func (r *Reconciler) check(key envKey, rec *envRecord, commit, settings string) verdict {
	if rec == nil || rec.State == nil || rec.State.SettingsHash != settings || rec.Legacy {
		// (A legacy environment is applied once to adopt it: the apply puts
		// this install's label on its namespace and objects.)
		if r.status.knownInvalid(key, commit, settings) {
			return verdictKnownInvalid
		}
		return verdictChanged
	}
	st := rec.State
	if st.Phase == PhaseInvalid && st.InvalidCommit == commit {
		return verdictKnownInvalid
	}
	if (st.Phase != PhaseReady && st.Phase != PhasePaused) || st.Commit != commit || r.lifecycleDue(key, rec) || r.pauseDue(key, rec) {
		return verdictChanged
	}
	if r.drifted(st) {
		return verdictChanged
	}
	if st.Fingerprints == nil {
		return verdictAdopt
	}
	return verdictUpToDate
}

// drifted reports whether an object of the environment was deleted or
// edited by hand since arbor last applied it (only deletions before the
// fingerprints are adopted).
func (r *Reconciler) drifted(st *envState) bool {
	adopt := st.Fingerprints == nil
	for _, ref := range st.Inventory {
		fp, watched, ok := r.cache.fingerprint(ref)
		switch {
		case !watched:
			continue
		case !ok:
			return true // deleted by hand, or lost arbor's label
		case !adopt && st.Fingerprints[refKey(ref)] != fp:
			return true // edited since arbor last applied it
		case adopt && r.cache.writtenByOthersSince(ref, st.AppliedAt):
			return true // edited right after arbor applied it
		}
	}
	return false
}

// adopt records the fingerprints of a freshly applied environment, so that
// later resyncs can tell a hand edit from arbor's own writes.
func (r *Reconciler) adopt(ctx context.Context, rec *envRecord) error {
	st := *rec.State
	if !r.takeFingerprints(&st) {
		r.queue.AddAfter(envKey{App: st.App, Branch: st.Branch}, adoptDelay) // the cache is behind
		return nil
	}
	return r.save(ctx, &st)
}

// takeFingerprints fills st.Fingerprints from the cache once it shows every
// write of the last deploy (st.Written since st.AppliedAt); false while the
// cache lags. The caller has checked that nothing drifted.
func (r *Reconciler) takeFingerprints(st *envState) bool {
	for _, ref := range st.Written {
		if !r.cache.appliedSince(ref, st.AppliedAt) {
			return false
		}
	}
	st.Written = nil
	st.Fingerprints = map[string]string{}
	for _, ref := range st.Inventory {
		if fp, _, ok := r.cache.fingerprint(ref); ok {
			st.Fingerprints[refKey(ref)] = fp
		}
	}
	return true
}

// awaitCache waits, at most d, until the cache shows every object st.Written
// names as applied by arbor since st.AppliedAt.
func (r *Reconciler) awaitCache(ctx context.Context, st *envState, d time.Duration) {
	deadline := time.Now().Add(d)
	for _, ref := range st.Written {
		for !r.cache.appliedSince(ref, st.AppliedAt) {
			if time.Now().After(deadline) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// cacheCatchUp bounds how long a finished run waits for the cache to show
// its writes before it records the environment without fingerprints.
const cacheCatchUp = time.Second

// terminatingPoll is how often an environment waiting for its old
// namespace to finish terminating looks again.
const terminatingPoll = 2 * time.Second

// adoptDelay is how long after a deploy its fingerprints are first looked at.
const adoptDelay = 300 * time.Millisecond

// clockSkew is how far the API server's clock may lag the daemon's when
// adoption compares managedFields times with the time of the apply.
const clockSkew = 2 * time.Second

var errFilteredOut = errors.New("branch excluded by the template's branches filter")

// build loads the branch's configuration and renders its environment,
// reusing the last render when commit, configuration and settings match.
// Its built services run the images pins gives them (see imagePins).
func (r *Reconciler) build(ctx context.Context, a *appRunner, branch, commit, defaultBranch string, pins imagePins) (*render.Environment, schema.Findings, error) {
	key := envKey{App: a.cfg.Name, Branch: branch}
	tree, err := a.src.Tree(ctx, commit)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", key, err)
	}
	cfg, findings, err := r.opts.Load(tree, a.cfg.Path, loadOptions(a.cfg))
	if err != nil || findings.HasErrors() {
		return nil, findings, err
	}
	if !cfg.Template.Branches.Allows(branch) {
		return nil, nil, errFilteredOut
	}
	target, placeWarning := r.place(key, commit, a.cfg, cfg.Template.Context)
	if target != r.cluster {
		return nil, nil, errOtherCluster
	}
	imports, err := r.resolveImports(ctx, a.cfg.Name, cfg.Template, branch)
	if err != nil {
		return nil, findings, fmt.Errorf("%s: %w", key, err)
	}
	rc := r.renderContext(a, branch, commit, defaultBranch)
	in := render.Input{Config: cfg, Tree: tree, Imports: imports, Context: rc}
	in.Context.Image.Pinned, err = pins(key, in, a)
	if err != nil {
		return nil, findings, err
	}
	settings := a.settings + importsID(imports) + pinsID(in.Context.Image.Pinned)
	if env := r.renders.get(key, commit, cfg.Hash, settings); env != nil {
		return env, findings, nil
	}
	in.Context.Secrets, in.Context.HashKey, err = r.secrets(ctx, a)
	if err != nil {
		return nil, findings, fmt.Errorf("%s: %w", key, err)
	}
	remote, stale, err := r.fetchChartsWarn(ctx, a, cfg)
	if err != nil {
		return nil, findings, fmt.Errorf("%s: %w", key, err)
	}
	in.RemoteCharts = remote
	in.Context.Charts = r.chartOptions(ctx)
	env, err := r.opts.Render(in)
	if err != nil {
		return nil, findings, fmt.Errorf("%s: render: %w", key, err)
	}
	if cfg.Template.App != "" && cfg.Template.App != a.cfg.Name {
		r.log.Warn("the template's app: is ignored: the daemon config names the app", "app", a.cfg.Name, "branch", branch, "template_app", cfg.Template.App)
	}
	labelPodSecurity(env, a.cfg.PodSecurity)
	labelPodTemplates(env)
	bindSecretReader(env, r.opts.Config.Namespace, r.opts.Config.ServiceAccount)
	addCostGuards(env, r.opts.Config.GuardsFor(a.cfg))
	env.Warnings = append(env.Warnings, stale...)
	if placeWarning != "" {
		env.Warnings = append(env.Warnings, placeWarning)
	}
	r.renders.put(key, commit, cfg.Hash, settings, env)
	return env, findings, nil
}

// renderContext is what the daemon renders an app's branch with, but for
// what build reads from the cluster (secrets, chart options) and the images'
// pins.
func (r *Reconciler) renderContext(a *appRunner, branch, commit, defaultBranch string) render.Context {
	d := r.opts.Config.Defaults
	registry := d.ImageRegistry
	if im := r.opts.Config.Images; im.Build != "" {
		registry = im.Registry
	}
	return render.Context{
		App: a.cfg.Name, AppFixed: true, Install: r.opts.Config.Install, Namespace: r.namespaceFor(a.cfg.Name, branch),
		Branch: branch, Commit: commit, DefaultBranch: defaultBranch,
		Domain: d.Domain, IngressClass: d.IngressClass, Parameters: a.cfg.Parameters,
		Image:                  render.ImageSettings{Registry: registry, Tag: d.ImageTag},
		StorageClasses:         d.StorageClasses,
		AllowClusterScoped:     r.opts.Config.AllowClusterScoped,
		AllowForeignNamespaces: r.opts.Config.AllowForeignNamespaces,
		DomainLocked:           true,
		IngressAnnotations:     ingressAnnotations(d.IngressAnnotations),
		Kustomize:              kustomizeLimits(a.cfg.Kustomize),
	}
}

// kustomizeLimits are the app's configured kustomize limits, as render takes them.
func kustomizeLimits(k config.KustomizeLimits) render.KustomizeLimits {
	return render.KustomizeLimits{MaxFileBytes: k.MaxFileSize.Bytes, MaxTotalBytes: k.MaxTotalSize.Bytes, Timeout: k.Timeout.Duration}
}

// secrets reads the app's secrets_from values, and the key of its env-hash
// annotations: the Secret's UID (render.Context.HashKey).
func (r *Reconciler) secrets(ctx context.Context, a *appRunner) (map[string]string, []byte, error) {
	if a.cfg.SecretsFrom == "" {
		return nil, nil, nil
	}
	values, uid, err := environment.Secrets(ctx, r.opts.Home, r.opts.Config.Namespace, a.cfg.SecretsFrom)
	if err != nil {
		return nil, nil, fmt.Errorf("secrets_from: %w", err)
	}
	return values, uid, nil
}

// failed records a failed deploy (keeping the write-ahead inventory) and returns err.
func (r *Reconciler) failed(ctx context.Context, key envKey, st *envState, err error) error {
	if o, ok := conflict(err); ok {
		// Someone else's namespace: say whose, write nothing there, and
		// look again with backoff (it may be deleted and become free).
		st.Phase, st.LastError, st.LastTransition = PhaseConflict, o.Error(), time.Now().UTC()
		if prev := r.status.get(key); prev == nil || prev.Phase != PhaseConflict {
			r.log.Warn("environment namespace belongs to someone else; nothing written", "app", key.App, "branch", key.Branch, "error", o.Error())
		}
		r.status.set(key, st)
		return err
	}
	st.Phase, st.LastError, st.LastTransition = PhaseFailed, err.Error(), time.Now().UTC()
	if r.failedWith(key, st.LastError) {
		return err // already recorded: a retry that fails the same way writes nothing
	}
	r.status.set(key, st)
	if ctx.Err() == nil {
		if serr := r.save(ctx, st); serr != nil && !apierrors.IsNotFound(serr) {
			r.log.Warn("could not record failure", "app", key.App, "branch", key.Branch, "error", serr)
		}
	}
	return err
}

// stateFrom is the state to record key's environment with: a copy of its
// record's, or a new one at commit when it has none.
func stateFrom(key envKey, rec *envRecord, commit string) *envState {
	if rec != nil && rec.State != nil {
		return copyState(rec.State)
	}
	return &envState{App: key.App, Branch: key.Branch, Commit: commit}
}

// failedWith reports whether key's status already records the failure msg:
// recording it again would write the record, whose change the cache sees
// and queues at once, a retry without backoff.
func (r *Reconciler) failedWith(key envKey, msg string) bool {
	prev := r.status.get(key)
	return prev != nil && prev.Phase == PhaseFailed && prev.LastError == msg
}

// fail records an error that happened before anything was applied.
func (r *Reconciler) fail(ctx context.Context, key envKey, rec *envRecord, commit string, err error) {
	st := stateFrom(key, rec, commit)
	if r.failedWith(key, err.Error()) {
		return
	}
	st.Phase, st.LastError, st.LastTransition = PhaseFailed, err.Error(), time.Now().UTC()
	st.TargetCommit = commit
	r.status.set(key, st)
	if st.Namespace != "" && ctx.Err() == nil {
		_ = r.save(ctx, st)
	}
}

// invalid records an invalid configuration; the running environment stays.
func (r *Reconciler) invalid(ctx context.Context, key envKey, rec *envRecord, commit, settings string, findings schema.Findings) error {
	errs := findings.Errors()
	errs.Sort()
	st := stateFrom(key, rec, "")
	st.Phase, st.InvalidCommit, st.Findings = PhaseInvalid, commit, errs
	st.LastError = fmt.Sprintf("%s: commit %s: invalid configuration: %s", key, short(commit), errs.Error())
	st.LastTransition = time.Now().UTC()
	st.SettingsHash = settings
	r.status.set(key, st)
	r.log.Warn("invalid configuration; the last good environment keeps running", "app", key.App, "branch", key.Branch,
		"commit", short(commit), "findings", errs.Error())
	if st.Namespace == "" {
		return nil // never deployed: nothing in the cluster to record it in
	}
	return r.save(ctx, st)
}

// remove deletes an environment whose branch is gone (after a successful
// listing) — only a namespace arbor created for this app.
func (r *Reconciler) remove(ctx context.Context, key envKey, rec *envRecord) error {
	a := r.apps[key.App]
	var commit string
	if lst := a.current(); lst != nil {
		commit = lst.Branches[key.Branch] // "" when the branch is gone
	}
	a.release(key.Branch, commit)
	if rec == nil {
		// Never deployed (waiting for its images or a slot): what is kept
		// in memory for it goes too, and its image job ends.
		r.forgetEnv(key)
		return nil
	}
	if rec.Deleting {
		// Already terminating (a delete that gave up waiting, or one by
		// hand): look again until it is gone, then forget it.
		r.queue.AddAfter(key, terminatingPoll)
		return nil
	}
	if rec.App != key.App || rec.Namespace == r.opts.Config.Namespace || apply.ProtectedNamespace(rec.Namespace) {
		return fmt.Errorf("%s: refusing to delete namespace %s", key, rec.Namespace)
	}
	if rec.Legacy {
		// No install label: written by an older arbor, maybe another
		// install's. It becomes ours only by adoption (its branch listed);
		// an unproven claim never deletes (docs/operations.md).
		r.log.Warn("not deleting an environment without an install label", "app", key.App, "branch", key.Branch, "namespace", rec.Namespace)
		r.status.forget(key)
		return nil
	}
	if r.images != nil {
		r.images.forget(key) // no build or wait for a branch gone, through the teardown
	}
	var inv []render.ObjectRef
	if rec.State != nil {
		inv = rec.State.Inventory
		r.apps[key.App].forge.closing(key.Branch, rec.State.PullRequest)
	}
	st := &envState{App: key.App, Branch: key.Branch, Namespace: rec.Namespace, EnvID: rec.EnvID, Phase: PhaseDeleting, LastTransition: time.Now().UTC()}
	r.status.set(key, st)
	r.log.Info("deleting the environment", "app", key.App, "branch", key.Branch, "namespace", rec.Namespace)
	removed, err := r.teardownEnv(ctx, key, rec, inv)
	if err != nil {
		return fmt.Errorf("%s: teardown: %w", key, err)
	}
	if !removed {
		if _, err := r.opts.Engine.Delete(ctx, inv, apply.DeleteOptions{Namespace: rec.Namespace}); err != nil {
			return fmt.Errorf("%s: delete: %w", key, err)
		}
	}
	r.forgetEnv(key)
	return nil
}

// forgetEnv drops what this Reconciler keeps in memory of an environment
// that is gone: its status, last render, imports and image job (cancelled).
func (r *Reconciler) forgetEnv(key envKey) {
	r.status.forget(key)
	r.renders.forget(key)
	r.imports.Forget(workflow.EnvKey(key))
	if r.images != nil {
		r.images.forget(key)
	}
}

func (r *Reconciler) save(ctx context.Context, st *envState) error {
	// The record is written with a client of its own, not through the
	// engine: the same ownership rule applies to it.
	if err := r.foreign(st.Namespace, st.App, st.EnvID); err != nil {
		return fmt.Errorf("%s@%s: not recording: %w", st.App, st.Branch, err)
	}
	st.Install = r.opts.Config.Install
	if r.images != nil {
		if rep := r.images.report(envKey{App: st.App, Branch: st.Branch}); rep != nil {
			st.Images = rep
		}
	}
	r.stampPause(st)
	if a := r.apps[st.App]; a != nil && a.forge != nil {
		if pr, closed, ok := a.forge.pullRequest(st.Branch); ok && !closed {
			st.PullRequest = pr.Number
		}
	}
	recorded := *st
	recorded.Images = recordedImages(st.Images)
	if err := saveState(ctx, r.opts.Kube, &recorded); err != nil {
		return err
	}
	r.status.set(envKey{App: st.App, Branch: st.Branch}, st)
	return nil
}

// stateOf is the record of a rendered environment.
func stateOf(env *render.Environment, settings, phase string) *envState {
	inv := make([]render.ObjectRef, len(env.Objects))
	for i, o := range env.Objects {
		inv[i] = apply.RefOf(o)
	}
	return &envState{
		App: env.App, Branch: env.Branch, EnvID: env.EnvID, Namespace: env.Namespace,
		Commit: env.Commit, ConfigHash: env.ConfigHash, SettingsHash: settings, Template: env.Template,
		Inventory: inv, Phase: phase, LastTransition: time.Now().UTC(),
		URLs: env.URLs, Links: env.Links, ExpiresAfter: env.ExpiresAfter, Warnings: env.Warnings,
	}
}

func union(a, b []render.ObjectRef) []render.ObjectRef {
	out := slices.Clone(b)
	for _, r := range a {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// renderCache keeps each environment's last render, keyed by commit,
// configuration hash and settings, so drift repairs and retries do not render again.
// The objects are kept packed (packedRender): they were half the daemon's
// live memory as maps, and are read again only on a repair, a retry, a
// teardown or a pull request comment.
type renderCache struct {
	mu sync.Mutex
	m  map[envKey]renderEntry
}

type renderEntry struct {
	id     string
	packed packedRender
}

func newRenderCache() *renderCache { return &renderCache{m: map[envKey]renderEntry{}} }

// get returns a copy of the render of key at commit, configuration and
// settings, or nil.
func (c *renderCache) get(key envKey, commit, configHash, settings string) *render.Environment {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && e.id == commit+"/"+configHash+"/"+settings {
		return e.packed.unpack()
	}
	return nil
}

func (c *renderCache) put(key envKey, commit, configHash, settings string, env *render.Environment) {
	p, err := packRender(env)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		delete(c.m, key) // not kept: rendered again when needed
		return
	}
	c.m[key] = renderEntry{id: commit + "/" + configHash + "/" + settings, packed: p}
}

// latest returns a copy of the environment's last render, whatever it was
// rendered from (the teardown of a branch that is gone runs it), or nil.
func (c *renderCache) latest(key envKey) *render.Environment {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return e.packed.unpack()
}

func (c *renderCache) forget(key envKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// importsID identifies the imported apps' branches, commits and
// configurations in the render cache's key.
func importsID(ims []render.Import) string {
	id := ""
	for _, im := range ims {
		hash := ""
		if im.Config != nil {
			hash = im.Config.Hash
		}
		id += "/" + im.App + "@" + im.Branch + ":" + im.Commit + ":" + hash
	}
	return id
}
