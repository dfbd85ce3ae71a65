package workflow

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/state"
)

// shopTemplate is a small app with a database, a migration, a seed, two
// services and a teardown job. FAIL is replaced by the migration's extra
// keys (the kwok test-fail label, halt_on_error), STEPHALT by the migrate
// step's halt_on_error.
const shopTemplate = `
services:
- name: db
  image: postgres:16
  ports: [{type: container_port, port: 5432}]
- name: api
  image: api
  has_repo: true
  depends_on: [db]
  ports: [{type: node_port, port: 8000}]
- name: web
  image: web:1
  ports: [{type: node_port, port: 80}]
jobs:
- name: migrate
  image: migrate:1
  backoff_limit: 0
  completed_timeout: 120
  FAIL
- name: seed
  image: seed:1
- name: dump
  image: dump:1
environment_variables:
  defaults:
  - {key: LOG_LEVEL, value: debug}
workflows:
- name: setup
  parallelize:
  - step: data
    tasks: [services.db]
  - step: migrate
    tasks: [jobs.migrate]
    STEPHALT
  - step: seed
    tasks: [jobs.seed]
  - step: app
    tasks: [services.api, services.web]
- name: patch
  order_from: [jobs.migrate, services.api]
- name: teardown
  order_from: [jobs.dump, release.remove_environment]
`

func shop(jobExtra, stepExtra string) string {
	return strings.NewReplacer("FAIL", jobExtra, "STEPHALT", stepExtra).Replace(shopTemplate)
}

const failLabel = `labels: {arbor.dev/test-fail: "true"}`

// reports collects every progress report of a run.
type reports struct {
	mu  sync.Mutex
	all []Progress
}

func (r *reports) add(p Progress) { r.mu.Lock(); r.all = append(r.all, p); r.mu.Unlock() }

// TestSetupOrder runs a written setup and checks, from watch events on the
// real cluster, that each step started only after the previous one finished:
// shared objects, then db ready, then the migration complete, then the seed
// complete, then api and web, then the Ingress once both are ready.
func TestSetupOrder(t *testing.T) {
	h := newHarness(t)
	env := h.render("main", "c1", shop("", "halt_on_error: true"))
	rec := h.record(env.Namespace)
	var reps reports
	res, err := h.x.Run(context.Background(), Run{Env: env, Stage: render.StageSetup, Report: reps.add})
	if err != nil {
		t.Fatalf("setup: %v\n%+v", err, res.Progress)
	}
	if res.Progress.Outcome != state.OutcomeSucceeded || len(res.Progress.Warnings) > 0 {
		t.Fatalf("outcome %s, warnings %v", res.Progress.Outcome, res.Progress.Warnings)
	}
	for _, tk := range res.Progress.Tasks {
		if tk.State != TaskSucceeded {
			t.Errorf("task %s: %s (%s)", tk.Name, tk.State, tk.Reason)
		}
	}

	cm := rec.first(t, "ConfigMap", "", added)
	dbAdded := rec.first(t, "Deployment", "db", added)
	dbReady := rec.first(t, "Deployment", "db", ready)
	migAdded := rec.first(t, "Job", "migrate-", added)
	migDone := rec.first(t, "Job", "migrate-", ready)
	seedAdded := rec.first(t, "Job", "seed-", added)
	seedDone := rec.first(t, "Job", "seed-", ready)
	apiAdded := rec.first(t, "Deployment", "api", added)
	webAdded := rec.first(t, "Deployment", "web", added)
	apiReady := rec.first(t, "Deployment", "api", ready)
	webReady := rec.first(t, "Deployment", "web", ready)
	ing := rec.first(t, "Ingress", "", added)
	before(t, "a shared ConfigMap before the first step", cm, dbAdded)
	before(t, "db ready before the migration is created", dbReady, migAdded)
	before(t, "migration complete before the seed", migDone, seedAdded)
	before(t, "seed complete before api", seedDone, apiAdded)
	before(t, "seed complete before web", seedDone, webAdded)
	before(t, "api ready before the Ingress", apiReady, ing)
	before(t, "web ready before the Ingress", webReady, ing)
	if _, err := h.kube.BatchV1().Jobs(env.Namespace).Get(context.Background(), env.Tasks["jobs.dump"][0].Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the teardown-only job ran in setup: %v", err)
	}

	// The reports saw the step order too, and each task go pending → running → succeeded.
	var steps []string
	for _, p := range reps.all {
		if p.Step != "" && (len(steps) == 0 || steps[len(steps)-1] != p.Step) {
			steps = append(steps, p.Step)
		}
	}
	if got := strings.Join(steps, ","); got != "data,migrate,seed,app" {
		t.Errorf("reported steps %s", got)
	}
	if first := reps.all[0]; first.Outcome != state.OutcomeRunning || first.Tasks[0].State != TaskPending {
		t.Errorf("first report %+v", first)
	}
}

// TestHaltOnError fails the migration (kwok's test-fail stage) with
// halt_on_error on its step, then on the job itself: the services after it
// are never created and the run fails with ErrHalted.
func TestHaltOnError(t *testing.T) {
	cases := map[string]struct{ job, step string }{
		"on the step": {job: failLabel, step: "halt_on_error: true"},
		"on the job":  {job: failLabel + "\n  halt_on_error: true", step: ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			env := h.render("main", "c1", shop(c.job, c.step))
			res, err := h.x.Run(context.Background(), Run{Env: env, Stage: render.StageSetup})
			if !errors.Is(err, ErrHalted) {
				t.Fatalf("err = %v, want ErrHalted", err)
			}
			p := res.Progress
			if p.Outcome != state.OutcomeFailed || !strings.Contains(p.Error, "jobs.migrate") {
				t.Errorf("outcome %s, error %q", p.Outcome, p.Error)
			}
			mig, _ := p.Task("", "jobs.migrate")
			if mig.State != TaskFailed || !strings.Contains(mig.Reason, "job failed") {
				t.Errorf("migrate: %+v", mig)
			}
			for _, name := range []string{"jobs.seed", "services.api", "services.web"} {
				if tk, _ := p.Task("", name); tk.State != TaskSkipped {
					t.Errorf("%s: %s, want skipped", name, tk.State)
				}
			}
			ctx := context.Background()
			for _, d := range []string{"api", "web"} {
				if _, err := h.kube.AppsV1().Deployments(env.Namespace).Get(ctx, d, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("Deployment %s exists after the halt (err %v)", d, err)
				}
			}
			ings, err := h.kube.NetworkingV1().Ingresses(env.Namespace).List(ctx, metav1.ListOptions{})
			if err != nil || len(ings.Items) > 0 {
				t.Errorf("Ingress applied after the halt: %v %v", ings, err)
			}
		})
	}
}

// TestFailureWithoutHaltIsWarning fails the migration with no
// halt_on_error anywhere: the workflow goes on and reports a warning.
func TestFailureWithoutHaltIsWarning(t *testing.T) {
	h := newHarness(t)
	env := h.render("main", "c1", shop(failLabel, ""))
	res, err := h.x.Run(context.Background(), Run{Env: env, Stage: render.StageSetup})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	p := res.Progress
	if p.Outcome != state.OutcomeWarnings || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "jobs.migrate failed") {
		t.Fatalf("outcome %s, warnings %q", p.Outcome, p.Warnings)
	}
	for _, name := range []string{"jobs.seed", "services.api", "services.web"} {
		if tk, _ := p.Task("", name); tk.State != TaskSucceeded {
			t.Errorf("%s: %s (%s)", name, tk.State, tk.Reason)
		}
	}
	if _, err := h.kube.AppsV1().Deployments(env.Namespace).Get(context.Background(), "api", metav1.GetOptions{}); err != nil {
		t.Errorf("api after a warning: %v", err)
	}
}

// TestPatch sets an environment up at one commit and patches it to the
// next: only the patch's job runs again (as a new Job), only its service is
// updated, and the setup-only job and the other services are left alone.
func TestPatch(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tmpl := shop("", "halt_on_error: true")
	env1 := h.render("main", "c1", tmpl)
	if _, err := h.x.Run(ctx, Run{Env: env1, Stage: render.StageSetup}); err != nil {
		t.Fatal(err)
	}
	env2 := h.render("main", "c2", tmpl)
	if env2.ConfigHash != env1.ConfigHash {
		t.Fatal("a new commit changed the configuration hash")
	}
	if d := ChooseStage(Last{Exists: true, Commit: "c1", ConfigHash: env1.ConfigHash, SetupDone: true}, env2, false); d.Stage != render.StagePatch {
		t.Fatal("a code-only change does not choose patch")
	}
	db1, err := h.kube.AppsV1().Deployments(env1.Namespace).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := h.record(env1.Namespace)
	res, err := h.x.Run(ctx, Run{Env: env2, Stage: render.StagePatch})
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	for _, ref := range res.Written {
		written[ref.Kind+"/"+ref.Name] = true
	}
	if !written["Deployment/api"] || !written["Job/"+env2.Tasks["jobs.migrate"][0].Name] || written["Deployment/db"] || written["Deployment/web"] {
		t.Errorf("patch wrote %v", res.Written)
	}
	if got := len(res.Progress.Tasks); got != 2 {
		t.Errorf("patch ran %d tasks, want 2: %+v", got, res.Progress.Tasks)
	}
	mig1, mig2 := env1.Tasks["jobs.migrate"][0].Name, env2.Tasks["jobs.migrate"][0].Name
	if mig1 == mig2 {
		t.Fatalf("the migration's run name %s did not change with the commit", mig1)
	}
	migDone := rec.first(t, "Job", mig2, ready)
	apiUpdated := rec.first(t, "Deployment", "api", func(e event) bool { return e.Commit == "c2" })
	before(t, "new migration complete before api is updated", migDone, apiUpdated)

	seed2 := env2.Tasks["jobs.seed"][0].Name
	if _, err := h.kube.BatchV1().Jobs(env2.Namespace).Get(ctx, seed2, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the setup-only seed job ran in the patch: %v", err)
	}
	db2, err := h.kube.AppsV1().Deployments(env2.Namespace).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if db2.ResourceVersion != db1.ResourceVersion || db2.Annotations[render.AnnotationCommit] != "c1" {
		t.Errorf("db was written by the patch: resourceVersion %s → %s, commit %s", db1.ResourceVersion, db2.ResourceVersion, db2.Annotations[render.AnnotationCommit])
	}
	web, err := h.kube.AppsV1().Deployments(env2.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || web.Annotations[render.AnnotationCommit] != "c1" {
		t.Errorf("web was updated by the patch: %v %v", web.Annotations, err)
	}
	api, err := h.kube.AppsV1().Deployments(env2.Namespace).Get(ctx, "api", metav1.GetOptions{})
	if err != nil || api.Spec.Template.Spec.Containers[0].Image != "api:c2" {
		t.Errorf("api not on the new commit: %v", err)
	}
}

// TestTeardown runs the teardown: its job completes before the namespace
// starts terminating, and the namespace is gone at the end.
func TestTeardown(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	env := h.render("main", "c1", shop("", ""))
	setup, err := h.x.Run(ctx, Run{Env: env, Stage: render.StageSetup})
	if err != nil {
		t.Fatal(err)
	}
	rec := h.record(env.Namespace)
	res, err := h.x.Run(ctx, Run{Env: env, Stage: render.StageTeardown, Inventory: setup.Applied})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Removed {
		t.Error("Removed is false after release.remove_environment")
	}
	dumpDone := rec.first(t, "Job", "dump-", ready)
	nsDeleting := rec.first(t, "Namespace", env.Namespace, func(e event) bool { return e.Deleting })
	before(t, "the teardown job completes before the namespace is deleted", dumpDone, nsDeleting)
	if _, err := h.kube.CoreV1().Namespaces().Get(ctx, env.Namespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace still there after teardown: %v", err)
	}
}

// TestCancelledIsNotHalted cancels a run during its migration: the error
// carries the cancellation, not ErrHalted, so the caller runs it again.
func TestCancelledIsNotHalted(t *testing.T) {
	h := newHarness(t)
	env := h.render("main", "c1", shop("", "halt_on_error: true"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	report := func(p Progress) {
		if tk, _ := p.Task("", "jobs.migrate"); tk.State == TaskRunning {
			cancel()
		}
	}
	res, err := h.x.Run(ctx, Run{Env: env, Stage: render.StageSetup, Report: report})
	if err == nil || errors.Is(err, ErrHalted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a cancellation that is not a halt", err)
	}
	if api, _ := res.Progress.Task("", "services.api"); api.State != TaskSkipped {
		t.Errorf("api after the cancellation: %+v", api)
	}
}
