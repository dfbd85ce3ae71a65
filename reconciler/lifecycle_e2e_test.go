package reconciler_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/state"
	"github.com/arbordev/arbor/workflow"
)

const backendApp = `services:
- name: api
  image: api:1
jobs:
- name: api-migrate
  image: migrate:1
workflows:
- name: patch
  order_from: [jobs.api-migrate, services.api]
`

const frontendApp = `app_imports:
- name: BACKEND
services:
- name: web
  image: web:1
`

// A commit on the backend branch a frontend environment imports patches
// that environment: backend's migration runs again and its api moves to the
// new commit; the frontend's own web is not written.
func TestImportedCommitPatchesImporter(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	front, back := appName(t), appName(t)
	br := newRepo(t, backendApp)
	fr := newRepo(t, strings.ReplaceAll(frontendApp, "BACKEND", back))
	cfg := newConfig(t, own, "apps:\n- name: "+front+"\n  repo: "+fr.dir+"\n  poll_interval: 1h\n- name: "+back+"\n  repo: "+br.dir+"\n  poll_interval: 1h\n  allow_import_by: ["+front+"]\ndefaults: {domain: test.local}\n")
	d := startDaemon(t, cfg)
	ctx := context.Background()

	env := d.waitPhase(front, "main", reconciler.PhaseReady, 90*time.Second)
	first := git(t, br.dir, "rev-parse", "HEAD")
	if got := deploymentCommit(t, cs, env.Namespace, "api"); got != first {
		t.Fatalf("the frontend's imported api runs %q, want backend's %s", got, first)
	}
	web1, err := cs.AppsV1().Deployments(env.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	moved := br.commit("backend moves", map[string]string{"VERSION": "2"})
	eventually(t, 60*time.Second, "the frontend's api at backend's new commit", func() bool {
		return deploymentCommit(t, cs, env.Namespace, "api") == moved
	})
	st := d.waitPhase(front, "main", reconciler.PhaseReady, 30*time.Second)
	if st.Workflow == nil || st.Workflow.Stage != render.StagePatch {
		t.Errorf("workflow after the backend's commit: %+v, want a patch", st.Workflow)
	}
	if mig, _ := st.Workflow.Task(back, "jobs.api-migrate"); mig.State != workflow.TaskSucceeded {
		t.Errorf("backend's migration in the patch: %+v", mig)
	}
	web2, err := cs.AppsV1().Deployments(env.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || web2.ResourceVersion != web1.ResourceVersion {
		t.Errorf("the frontend's web was written by the patch (%v)", err)
	}
	if n := counter(t, d.reg, "arbor_workflow_runs_total", func(l map[string]string) bool {
		return l["app"] == front && l["stage"] == "patch" && l["result"] == "succeeded"
	}); n < 1 {
		t.Errorf("arbor_workflow_runs_total{stage=patch,result=succeeded} = %v", n)
	}
}

const heldApp = `auto_deploy: false
services:
- name: web
  image: web
  has_repo: true
`

// auto_deploy: false: the environment appears with its branch, a push is
// held (status shows the held commit, the Deployment stays), and a deploy
// request through the API deploys it.
func TestAutoDeployFalseHoldsUntilRequested(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, heldApp)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\n")
	d := startDaemon(t, cfg)

	c1 := git(t, r.dir, "rev-parse", "HEAD")
	env := d.waitReadyAt(app, "main", c1, 90*time.Second)
	c2 := r.commit("code", map[string]string{"app.txt": "v2"})
	eventually(t, 30*time.Second, "the push held", func() bool {
		e := d.env(app, "main")
		return e != nil && e.HeldCommit == c2
	})
	time.Sleep(2 * time.Second)
	if got := deploymentCommit(t, cs, env.Namespace, "web"); got != c1 {
		t.Fatalf("web runs %s while the push is held, want %s", got, c1)
	}

	if code := d.deploy(app, "main"); code != http.StatusAccepted {
		t.Fatalf("deploy request: %d", code)
	}
	st := d.waitReadyAt(app, "main", c2, 60*time.Second)
	if got := deploymentCommit(t, cs, env.Namespace, "web"); got != c2 {
		t.Errorf("web runs %s after the deploy request, want %s", got, c2)
	}
	if st.HeldCommit != "" || st.Workflow == nil || st.Workflow.Stage != render.StagePatch {
		t.Errorf("status after the request: held %q, workflow %+v", st.HeldCommit, st.Workflow)
	}
}

const expiringApp = `tracking_branch: main
environment_templates:
- name: ephemeral
  expires_after: 8s
services:
- name: web
  image: web:1
`

// Expiry through the daemon: an ephemeral environment with no commit for
// expires_after is torn down, one annotated arbor.dev/keep stays, the
// permanent one stays, and the next push brings the expired one back.
func TestExpiryThroughDaemon(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, expiringApp)
	r.on("feature/old")
	r.commit("old", map[string]string{"a.txt": "1"})
	r.on("feature/kept")
	r.commit("kept", map[string]string{"b.txt": "1"})
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\n")
	d := startDaemon(t, cfg)
	ctx := context.Background()

	old := d.waitPhase(app, "feature/old", reconciler.PhaseReady, 60*time.Second)
	kept := d.waitPhase(app, "feature/kept", reconciler.PhaseReady, 60*time.Second)
	d.waitPhase(app, "main", reconciler.PhaseReady, 60*time.Second)
	patch := []byte(`{"metadata":{"annotations":{"arbor.dev/keep":"true"}}}`)
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, kept.Namespace, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "feature/old expired and its namespace gone", func() bool { return namespaceGone(cs, old.Namespace) })
	if e := d.env(app, "feature/old"); e == nil || e.Phase != reconciler.PhaseExpired {
		t.Errorf("status of the expired environment: %+v", e)
	}
	for _, b := range []string{"feature/kept", "main"} {
		if e := d.env(app, b); e == nil || e.Phase != reconciler.PhaseReady {
			t.Errorf("%s after the expiry: %+v", b, e)
		}
	}

	r.on("feature/old")
	pushed := r.commit("back again", map[string]string{"a.txt": "2"})
	d.waitReadyAt(app, "feature/old", pushed, 60*time.Second)
	if namespaceGone(cs, old.Namespace) {
		t.Error("the next push did not recreate the expired environment")
	}

	// Without its keep annotation, the kept one expires too.
	unkeep := []byte(`{"metadata":{"annotations":{"arbor.dev/keep":null}}}`)
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, kept.Namespace, types.MergePatchType, unkeep, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "feature/kept expired once no longer kept", func() bool { return namespaceGone(cs, kept.Namespace) })
}

const failingApp = `services:
- name: web
  image: web:1
jobs:
- name: migrate
  image: migrate:1
  backoff_limit: 0
  halt_on_error: true
  labels: {arbor.dev/test-fail: "true"}
workflows:
- name: setup
  order_from: [jobs.migrate, services.web]
`

// A setup whose migration fails (kwok's test-fail stage) with halt_on_error
// marks the environment failed, names the job in status, is not retried by
// itself, and runs again on a deploy request.
func TestFailedSetupThroughDaemon(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, failingApp)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\n")
	d := startDaemon(t, cfg)
	ctx := context.Background()

	st := d.waitPhase(app, "main", reconciler.PhaseFailed, 90*time.Second)
	eventually(t, 30*time.Second, "the setup recorded as failed", func() bool {
		st = d.env(app, "main")
		return st.Workflow != nil && st.Workflow.Outcome == state.OutcomeFailed
	})
	if mig, _ := st.Workflow.Task("", "jobs.migrate"); mig.State != workflow.TaskFailed {
		t.Errorf("migrate: %+v", mig)
	}
	if web, _ := st.Workflow.Task("", "services.web"); web.State != workflow.TaskSkipped {
		t.Errorf("web: %+v", web)
	}
	if _, err := cs.AppsV1().Deployments(st.Namespace).Get(ctx, "web", metav1.GetOptions{}); err == nil {
		t.Error("web was deployed after the halted migration")
	}
	runs := func() float64 {
		return counter(t, d.reg, "arbor_workflow_runs_total", func(l map[string]string) bool { return l["app"] == app && l["stage"] == "setup" })
	}
	time.Sleep(3 * time.Second) // the retry backoff is at most 2s in tests: a retry would have happened
	if n := runs(); n != 1 {
		t.Fatalf("setup ran %v times without a change or a request, want 1", n)
	}
	if code := d.deploy(app, "main"); code != http.StatusAccepted {
		t.Fatalf("deploy request: %d", code)
	}
	eventually(t, 60*time.Second, "a second setup after the deploy request", func() bool { return runs() == 2 })
}

const farewellApp = `services:
- name: web
  image: web:1
jobs:
- name: farewell
  image: farewell:1
workflows:
- name: setup
  order_from: [services.web]
- name: teardown
  order_from: [jobs.farewell, release.remove_environment]
`

// A branch deleted while arbor was down still gets its teardown: the
// restarted daemon, with no render in memory, renders the commit the
// environment's record names and runs its teardown job before the
// namespace goes.
func TestTeardownAfterRestart(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, farewellApp)
	r.on("feature")
	commit := r.commit("feature work", map[string]string{"README": "feature\n"})
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\n")
	first := startDaemon(t, cfg)
	ns := first.waitReadyAt(app, "feature", commit, 90*time.Second).Namespace
	first.stop()

	r.deleteBranch("feature")
	second := startDaemon(t, cfg)
	teardowns := func(outcome workflow.Outcome) float64 {
		return counter(t, second.reg, "arbor_workflow_runs_total", func(l map[string]string) bool {
			return l["app"] == app && l["stage"] == "teardown" && (outcome == "" || l["result"] == string(outcome))
		})
	}
	eventually(t, 90*time.Second, "the teardown run finished", func() bool { return teardowns("") == 1 })
	if n := teardowns(state.OutcomeSucceeded); n != 1 {
		t.Fatalf("the restarted daemon's teardown of the deleted branch did not succeed (%v succeeded runs)", n)
	}
	eventually(t, 90*time.Second, "namespace "+ns+" deleted", func() bool { return namespaceGone(cs, ns) })
}

const twoServices = `services:
- name: web
  image: web:1
- name: worker
  image: worker:1
`

// An environment whose record is missing (a first run stopped before it
// wrote one: a new namespace's run writes its record only at the end) is
// recovered from the cache: what arbor created in the namespace counts as
// its inventory, so an object the new render drops is pruned.
func TestRecordlessEnvironmentIsRecovered(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, twoServices)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\n")
	first := startDaemon(t, cfg)
	ns := first.waitReadyAt(app, "main", git(t, r.dir, "rev-parse", "HEAD"), 90*time.Second).Namespace
	first.stop()

	ctx := context.Background()
	if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx, reconciler.StateConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	commit := r.commit("drop the worker", map[string]string{".release.yaml": webApp})
	second := startDaemon(t, cfg)
	second.waitReadyAt(app, "main", commit, 90*time.Second)
	eventually(t, 30*time.Second, "the worker Deployment pruned", func() bool {
		_, err := cs.AppsV1().Deployments(ns).Get(ctx, "worker", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("web: %v", err)
	}
}

// TestImportNeedsAllowance: an app may import another only when the imported
// app's daemon config names it in allow_import_by (the importer receives the
// imported app's secrets_from values). Without it the importer's environment
// fails with that reason and nothing of it is deployed; with it, it deploys.
func TestImportNeedsAllowance(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	front, back := appName(t), appName(t)
	br := newRepo(t, backendApp)
	fr := newRepo(t, strings.ReplaceAll(frontendApp, "BACKEND", back))
	body := "apps:\n- name: " + front + "\n  repo: " + fr.dir + "\n  poll_interval: 1h\n- name: " + back + "\n  repo: " + br.dir + "\n  poll_interval: 1h\nALLOWdefaults: {domain: test.local}\n"
	d := startDaemon(t, newConfig(t, own, strings.Replace(body, "ALLOW", "", 1)))
	refused := d.waitPhase(front, "main", reconciler.PhaseFailed, 60*time.Second)
	if !strings.Contains(refused.LastError, "does not allow imports by "+front) {
		t.Fatalf("the refused import says %q", refused.LastError)
	}
	if !namespaceGone(cs, front+"-main") {
		t.Errorf("namespace %s-main exists: the refused import deployed something", front)
	}
	d.stop()
	d = startDaemon(t, newConfig(t, own, strings.Replace(body, "ALLOW", "  allow_import_by: ["+front+"]\n", 1)))
	d.waitPhase(front, "main", reconciler.PhaseReady, 90*time.Second)
}
