package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/state"
)

// Engine is what a run needs of the apply engine; *apply.Engine is one.
type Engine interface {
	Apply(ctx context.Context, objs []*unstructured.Unstructured, opts apply.ApplyOptions) (*apply.ChangeSet, error)
	Wait(ctx context.Context, objs []*unstructured.Unstructured, opts apply.WaitOptions) error
	Delete(ctx context.Context, inv apply.Inventory, opts apply.DeleteOptions) (*apply.ChangeSet, error)
	Recreate(ctx context.Context, ref apply.ObjectRef, opts apply.DeleteOptions, stale func(*unstructured.Unstructured) bool) (bool, error)
}

// Defaults of an Executor.
const (
	DefaultConcurrency    = 16
	DefaultRolloutTimeout = 10 * time.Minute
	// jobGrace is waited beyond a Job's completed_timeout (its
	// activeDeadlineSeconds) for the Job controller to mark it failed.
	jobGrace = 30 * time.Second
)

// ErrHalted is returned (wrapped) when a failure of a task with
// halt_on_error (on its step or on its job) stopped the workflow. A run
// interrupted by its context is not halted: its error wraps the context's.
var ErrHalted = errors.New("workflow halted")

// Executor runs workflows. It is safe for concurrent use by runs of
// different environments.
type Executor struct {
	Engine Engine
	// Concurrency bounds the tasks of one step, and the imported apps, run at
	// once (DefaultConcurrency when zero).
	Concurrency int
	// RolloutTimeout bounds the wait for a service's rollout (DefaultRolloutTimeout when zero).
	RolloutTimeout time.Duration
	// Metrics, when set, counts runs and times tasks.
	Metrics *Metrics
}

// Run is one run of a workflow.
type Run struct {
	Env   *render.Environment
	Stage string // setup, patch, teardown or another workflow of Env
	// Inventory is what the environment holds from earlier runs (its
	// record); release.remove_environment deletes it with the namespace.
	Inventory apply.Inventory
	// Report, when set, receives the progress after every change, in order.
	Report func(Progress)
	// Fresh says the caller has just created Env.Namespace: nothing of the
	// environment exists yet, so objects are created without a read first.
	Fresh bool
	// Diff applies with a diff of each change (the fields it changes), for
	// the command line, which shows Result.Changes.
	Diff bool
}

// Result is how a run ended.
type Result struct {
	Progress Progress
	// Applied are the objects this run applied or tried to apply, to be
	// added to the environment's inventory.
	Applied apply.Inventory
	// Written are the objects the run created or changed (a subset of Applied).
	Written apply.Inventory
	// Removed reports that release.remove_environment deleted the environment.
	Removed bool
	// Changes are every change the run's applies made, in order.
	Changes *apply.ChangeSet
}

// run is the state of one Run call.
type run struct {
	x       *Executor
	in      Run
	tr      *tracker
	objs    map[render.ObjectRef]*unstructured.Unstructured
	owner   apply.Owner                  // the environment's Namespace's: nothing of another is written
	shared  []*unstructured.Unstructured // owned by no task: before the first step
	ingress []*unstructured.Unstructured // after the last step

	mu      sync.Mutex
	applied apply.Inventory
	changes *apply.ChangeSet // every apply's changes, under mu

	stop    atomic.Bool // halted, removed or cancelled: start no further step
	halted  atomic.Bool
	removed atomic.Bool
	errOnce sync.Once
	err     error
}

// Run runs one stage of an environment: the objects owned by no task first,
// then the steps in order (imported apps' steps before the environment's own,
// in parallel across imports with parallelize_app_imports), the tasks of a
// step in parallel, and the Ingress after the last step. A task failure
// stops the workflow when its step or its job has halt_on_error (the error
// wraps ErrHalted); otherwise it is a warning and the workflow goes on. The
// Result is complete also when err is not nil.
func (x *Executor) Run(ctx context.Context, in Run) (*Result, error) {
	if in.Env == nil {
		return nil, errors.New("workflow: no environment")
	}
	wf, ok := in.Env.Workflows[in.Stage]
	if !ok {
		return nil, fmt.Errorf("%s@%s: no workflow named %q", in.Env.App, in.Env.Branch, in.Stage)
	}
	r := x.newRun(in, wf)
	start := time.Now()
	r.execute(ctx, wf)
	p := r.finish()
	x.Metrics.observeRun(in.Env.App, in.Stage, p.Outcome, time.Since(start))
	res := &Result{Progress: p, Applied: r.appliedRefs(), Written: r.changes.Written().Sorted(), Removed: r.removed.Load(), Changes: r.changes}
	if r.err != nil {
		return res, fmt.Errorf("%s@%s: %s: %w", in.Env.App, in.Env.Branch, in.Stage, r.err)
	}
	return res, nil
}

func (x *Executor) newRun(in Run, wf render.Workflow) *run {
	r := &run{x: x, in: in, objs: map[render.ObjectRef]*unstructured.Unstructured{}, changes: &apply.ChangeSet{}}
	if len(in.Env.Objects) > 0 && in.Env.Objects[0].GetKind() == "Namespace" {
		r.owner = apply.OwnerOf(in.Env.Objects[0])
	}
	owned := map[render.ObjectRef]bool{}
	for _, refs := range in.Env.Tasks {
		for _, ref := range refs {
			owned[ref] = true
		}
	}
	for _, o := range in.Env.Objects {
		ref := apply.RefOf(o)
		r.objs[ref] = o
		switch {
		case owned[ref]:
		case ref.Kind == "Ingress":
			r.ingress = append(r.ingress, o)
		default:
			r.shared = append(r.shared, o)
		}
	}
	p := Progress{App: in.Env.App, Stage: in.Stage, Outcome: state.OutcomeRunning, Started: time.Now()}
	for _, st := range wf.Steps {
		for _, t := range st.Tasks {
			p.Tasks = append(p.Tasks, Task{Name: t, App: st.App, Step: st.Name, State: TaskPending})
		}
	}
	r.tr = &tracker{p: p, report: in.Report}
	return r
}

// execute runs the workflow's parts in order.
func (r *run) execute(ctx context.Context, wf render.Workflow) {
	r.tr.update(func(*Progress) {}) // the first report: every task pending
	if r.needsShared(wf) {
		if err := r.applyObjects(ctx, r.shared); err != nil {
			r.fail(fmt.Errorf("objects owned by no task: %w", err))
			r.skipRest("an object owned by no task could not be applied")
			return
		}
	}
	if r.in.Stage == render.StageTeardown {
		r.runTeardownHooks(ctx)
	}
	imports, own := splitSteps(wf.Steps)
	r.runImports(ctx, imports)
	r.runSteps(ctx, own)
	if r.stop.Load() || r.in.Stage == render.StageTeardown || len(r.ingress) == 0 {
		return
	}
	if err := r.applyObjects(ctx, r.ingress); err != nil {
		r.fail(fmt.Errorf("ingress: %w", err))
	}
}

// needsShared says whether the objects owned by no task are applied: in
// every stage but a teardown that only removes the environment.
func (r *run) needsShared(wf render.Workflow) bool {
	if r.in.Stage != render.StageTeardown {
		return true
	}
	for _, st := range wf.Steps {
		for _, t := range st.Tasks {
			if t != render.TaskRemoveEnv {
				return true
			}
		}
	}
	return false
}

// indexedStep is a step with the index of its first task in Progress.Tasks.
type indexedStep struct {
	render.Step
	first int
}

// splitSteps separates imported apps' steps, grouped per app in order, from
// the environment's own.
func splitSteps(steps []render.Step) (imports [][]indexedStep, own []indexedStep) {
	byApp := map[string]int{}
	i := 0
	for _, st := range steps {
		is := indexedStep{Step: st, first: i}
		i += len(st.Tasks)
		if st.App == "" {
			own = append(own, is)
			continue
		}
		k, ok := byApp[st.App]
		if !ok {
			k = len(imports)
			byApp[st.App] = k
			imports = append(imports, nil)
		}
		imports[k] = append(imports[k], is)
	}
	return imports, own
}

// runImports runs each imported app's steps, one app after another or, with
// parallelize_app_imports, the apps in parallel.
func (r *run) runImports(ctx context.Context, imports [][]indexedStep) {
	if !r.in.Env.ParallelizeAppImports {
		for _, steps := range imports {
			r.runSteps(ctx, steps)
		}
		return
	}
	g := new(errgroup.Group)
	g.SetLimit(r.x.concurrency())
	for _, steps := range imports {
		g.Go(func() error { r.runSteps(ctx, steps); return nil })
	}
	_ = g.Wait()
}

// runSteps runs steps in order until the run stops.
func (r *run) runSteps(ctx context.Context, steps []indexedStep) {
	for i, st := range steps {
		if r.stop.Load() || ctx.Err() != nil {
			if ctx.Err() != nil {
				r.fail(fmt.Errorf("step %s: %w", st.Name, context.Cause(ctx)))
			}
			for _, rest := range steps[i:] {
				r.skipStep(rest, r.stopReason())
			}
			return
		}
		r.runStep(ctx, st)
	}
}

// runStep runs the tasks of one step in parallel, bounded.
func (r *run) runStep(ctx context.Context, st indexedStep) {
	r.tr.update(func(p *Progress) { p.Step = stepLabel(st.Step) })
	g := new(errgroup.Group)
	g.SetLimit(r.x.concurrency())
	for k, task := range st.Tasks {
		g.Go(func() error {
			r.runTask(ctx, st, st.first+k, task)
			return nil
		})
	}
	_ = g.Wait()
}

func stepLabel(st render.Step) string {
	if st.App != "" {
		return st.App + "/" + st.Name
	}
	return st.Name
}

// runTask runs one task and records its outcome.
func (r *run) runTask(ctx context.Context, st indexedStep, i int, task string) {
	r.tr.setTask(i, TaskRunning, "")
	start := time.Now()
	err := r.do(ctx, st.Step, task)
	result := TaskSucceeded
	if err != nil {
		result = TaskFailed
	}
	r.x.Metrics.observeTask(r.in.Env.App, r.in.Stage, task, result, time.Since(start))
	if err == nil {
		r.tr.setTask(i, TaskSucceeded, "")
		return
	}
	reason := err.Error()
	r.tr.setTask(i, TaskFailed, reason)
	if ctx.Err() != nil {
		// Cancelled (the daemon is stopping): not the task's failure, and
		// not a halt; the caller runs the stage again.
		r.fail(fmt.Errorf("step %s: %s interrupted: %w", stepLabel(st.Step), task, context.Cause(ctx)))
		return
	}
	if st.HaltOnError || r.in.Env.HaltOnError[task] {
		r.halted.Store(true)
		r.fail(fmt.Errorf("%w: step %s: %s failed: %w", ErrHalted, stepLabel(st.Step), task, err))
		return
	}
	r.tr.update(func(p *Progress) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("step %s: %s failed: %s", stepLabel(st.Step), task, reason))
	})
}

// do carries out one task.
func (r *run) do(ctx context.Context, st render.Step, task string) error {
	switch {
	case task == render.TaskRemoveEnv:
		return r.remove(ctx)
	case strings.HasPrefix(task, "jobs."):
		return r.runJob(ctx, task)
	case strings.HasPrefix(task, "services."):
		return r.deployService(ctx, task, st.WaitForFinish)
	case strings.HasPrefix(task, "charts."):
		return r.deployChart(ctx, task, st.WaitForFinish)
	}
	return fmt.Errorf("%s: unknown task", task)
}

// deployService applies a service's objects and, unless wait_for_finish is
// false, waits for its rollout.
func (r *run) deployService(ctx context.Context, task string, wait bool) error {
	objs, err := r.taskObjects(task)
	if err != nil {
		return err
	}
	if err := r.applyObjects(ctx, objs); err != nil {
		return err
	}
	if !wait {
		return nil
	}
	return r.x.Engine.Wait(ctx, objs, apply.WaitOptions{Namespace: r.in.Env.Namespace, Timeout: r.x.rolloutTimeout()})
}

// remove deletes the environment: every object it holds and its namespace.
func (r *run) remove(ctx context.Context) error {
	inv := append(apply.Inventory{}, r.in.Inventory...)
	for ref := range r.objs {
		inv = append(inv, ref)
	}
	inv = append(inv, r.appliedRefs()...)
	_, err := r.x.Engine.Delete(ctx, inv.Sorted(), apply.DeleteOptions{Namespace: r.in.Env.Namespace})
	if err != nil {
		return err
	}
	r.removed.Store(true)
	r.stop.Store(true)
	return nil
}

// taskObjects are the objects a task owns, in the environment's order.
func (r *run) taskObjects(task string) ([]*unstructured.Unstructured, error) {
	refs := r.in.Env.Tasks[task]
	out := make([]*unstructured.Unstructured, 0, len(refs))
	for _, ref := range refs {
		o, ok := r.objs[ref]
		if !ok {
			return nil, fmt.Errorf("%s: object %s/%s is not in the environment", task, ref.Kind, ref.Name)
		}
		out = append(out, o)
	}
	return out, nil
}

// applyObjects applies objs after adding them to the run's inventory, so an
// interrupted apply leaves nothing the caller cannot find again.
func (r *run) applyObjects(ctx context.Context, objs []*unstructured.Unstructured) error {
	if len(objs) == 0 {
		return nil
	}
	r.mu.Lock()
	for _, o := range objs {
		r.applied = append(r.applied, apply.RefOf(o))
	}
	r.mu.Unlock()
	opts := apply.ApplyOptions{Namespace: r.in.Env.Namespace, NewNamespace: r.in.Fresh, NoDiff: !r.in.Diff, Owner: r.owner}
	cs, err := r.x.Engine.Apply(ctx, objs, opts)
	if cs != nil {
		r.mu.Lock()
		r.changes.Changes = append(r.changes.Changes, cs.Changes...)
		r.mu.Unlock()
	}
	return err
}

func (r *run) appliedRefs() apply.Inventory {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(apply.Inventory, 0, len(r.applied))
	for _, ref := range r.applied {
		if ref.Namespace == "" && ref.Kind != "Namespace" {
			ref.Namespace = r.in.Env.Namespace
		}
		out = append(out, ref)
	}
	return out.Sorted()
}

// fail records the first error that fails the run and stops it.
func (r *run) fail(err error) {
	r.stop.Store(true)
	r.errOnce.Do(func() {
		r.err = err
		r.tr.update(func(p *Progress) { p.Error = err.Error() })
	})
}

func (r *run) stopReason() string {
	switch {
	case r.removed.Load():
		return "the environment was removed"
	case r.halted.Load():
		return "the workflow halted"
	}
	return "the workflow stopped"
}

func (r *run) skipStep(st indexedStep, reason string) {
	r.tr.update(func(p *Progress) {
		for k := range st.Tasks {
			if t := &p.Tasks[st.first+k]; t.State == TaskPending {
				t.State, t.Reason = TaskSkipped, reason
			}
		}
	})
}

func (r *run) skipRest(reason string) {
	r.tr.update(func(p *Progress) {
		for k := range p.Tasks {
			if t := &p.Tasks[k]; t.State == TaskPending {
				t.State, t.Reason = TaskSkipped, reason
			}
		}
	})
}

// finish sets the outcome and reports the last progress.
func (r *run) finish() Progress {
	r.tr.update(func(p *Progress) {
		p.Step, p.Finished = "", time.Now()
		switch {
		case r.err != nil:
			p.Outcome = state.OutcomeFailed
		case len(p.Warnings) > 0:
			p.Outcome = state.OutcomeWarnings
		default:
			p.Outcome = state.OutcomeSucceeded
		}
	})
	return r.tr.snapshot()
}

func (x *Executor) concurrency() int {
	if x.Concurrency > 0 {
		return x.Concurrency
	}
	return DefaultConcurrency
}

func (x *Executor) rolloutTimeout() time.Duration {
	if x.RolloutTimeout > 0 {
		return x.RolloutTimeout
	}
	return DefaultRolloutTimeout
}

// deployChart runs a chart's task (docs/charts.md): its pre-install and
// pre-upgrade hooks, then its objects, applied and waited for like a
// service's, then its post-install and post-upgrade hooks.
func (r *run) deployChart(ctx context.Context, task string, wait bool) error {
	if err := r.runHooks(ctx, task, render.HookBefore); err != nil {
		return err
	}
	if err := r.deployService(ctx, task, wait); err != nil {
		return err
	}
	return r.runHooks(ctx, task, render.HookAfter)
}

// runHooks applies a chart task's hooks of one phase in weight order, each
// made anew (Helm's default before-hook-creation policy) and waited for —
// a Job until it completes — and deleted after success when its policy
// says hook-succeeded.
func (r *run) runHooks(ctx context.Context, task string, phase render.HookPhase) error {
	hooks := r.in.Env.HooksFor(task, phase)
	sort.SliceStable(hooks, func(i, j int) bool { return hooks[i].Weight < hooks[j].Weight })
	ns := r.in.Env.Namespace
	for _, h := range hooks {
		ref := apply.RefOf(h.Object)
		if ref.Namespace == "" {
			ref.Namespace = ns
		}
		always := func(*unstructured.Unstructured) bool { return true }
		if _, err := r.x.Engine.Recreate(ctx, ref, apply.DeleteOptions{Namespace: ns, Timeout: jobGoneTimeout}, always); err != nil {
			return fmt.Errorf("hook %s: %w", ref, err)
		}
		objs := []*unstructured.Unstructured{h.Object}
		if err := r.applyObjects(ctx, objs); err != nil {
			return fmt.Errorf("hook %s: %w", ref, err)
		}
		timeout := r.x.rolloutTimeout()
		if h.Object.GetKind() == "Job" {
			timeout = jobTimeout(h.Object)
		}
		if err := r.x.Engine.Wait(ctx, objs, apply.WaitOptions{Namespace: ns, Timeout: timeout}); err != nil {
			return fmt.Errorf("hook %s: %w", ref, err)
		}
		if slices.Contains(h.DeletePolicies, "hook-succeeded") {
			if _, err := r.x.Engine.Recreate(ctx, ref, apply.DeleteOptions{Namespace: ns, Timeout: jobGoneTimeout}, always); err != nil {
				return fmt.Errorf("hook %s: delete after success: %w", ref, err)
			}
		}
	}
	return nil
}

// runTeardownHooks runs every chart's pre-delete and post-delete hooks at
// the start of a teardown, while the environment still exists (after its
// removal there is nowhere to run a post-delete hook). A failing hook is a
// warning: it does not keep the environment from going.
func (r *run) runTeardownHooks(ctx context.Context) {
	var tasks []string
	for _, h := range r.in.Env.Hooks {
		if h.Phase == render.HookTeardown && !slices.Contains(tasks, h.Task) {
			tasks = append(tasks, h.Task)
		}
	}
	for _, task := range tasks {
		if err := r.runHooks(ctx, task, render.HookTeardown); err != nil {
			r.tr.update(func(p *Progress) {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s: delete hook failed: %v", task, err))
			})
		}
	}
}
