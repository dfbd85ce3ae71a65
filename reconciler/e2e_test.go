package reconciler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// A local repository, watched with fsnotify (the poll interval is an hour,
// so only the watch can bring changes in time): a pushed branch appears, a
// new commit and a template change update it, a broken .release.yaml keeps
// the old environment running with FILE:LINE in status, and a deleted branch
// takes its namespace with it.
func TestLocalRepositoryLifecycle(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName()
	r := newRepo(t, webApp)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\n")
	d := startDaemon(t, cfg)
	ctx := context.Background()

	main := d.waitPhase(app, "main", reconciler.PhaseReady, 90*time.Second)
	if main.Namespace != app+"-main" || len(main.URLs) == 0 {
		t.Errorf("main environment = %+v", main)
	}

	// push a branch → its environment appears
	r.on("feature/login")
	c1 := r.commit("login page", map[string]string{"login.txt": "v1"})
	env := d.waitReadyAt(app, "feature/login", c1, 60*time.Second)
	ns := env.Namespace
	if got := deploymentCommit(t, cs, ns, "web"); got != c1 {
		t.Fatalf("Deployment web carries commit %q, want %s", got, c1)
	}

	// push again → updated
	c2 := r.commit("login page v2", map[string]string{"login.txt": "v2"})
	d.waitReadyAt(app, "feature/login", c2, 60*time.Second)
	if got := deploymentCommit(t, cs, ns, "web"); got != c2 {
		t.Fatalf("Deployment web carries commit %q, want %s", got, c2)
	}

	// change the template → updated (a second replica)
	good := r.commit("two replicas", map[string]string{".release.yaml": strings.Replace(webApp, "- name: web\n", "- name: web\n  replicas: 2\n", 1)})
	eventually(t, 60*time.Second, "Deployment web with 2 replicas", func() bool {
		dep, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && dep.Spec.Replicas != nil && *dep.Spec.Replicas == 2
	})
	d.waitReadyAt(app, "feature/login", good, 30*time.Second)

	// break .release.yaml → the old environment keeps running; status has FILE:LINE
	bad := r.commit("broken", map[string]string{".release.yaml": webApp + "  replicas: many\n"})
	inv := d.waitPhase(app, "feature/login", reconciler.PhaseInvalid, 30*time.Second)
	if inv.InvalidCommit != bad || inv.Commit != good {
		t.Errorf("invalid status: commit %s invalidCommit %s; want %s and %s", inv.Commit, inv.InvalidCommit, good, bad)
	}
	if len(inv.Findings) == 0 || inv.Findings[0].File != ".release.yaml" || inv.Findings[0].Line == 0 {
		t.Fatalf("findings = %+v, want one at .release.yaml:LINE", inv.Findings)
	}
	if !strings.Contains(inv.LastError, ".release.yaml:") {
		t.Errorf("lastError %q does not name .release.yaml:LINE", inv.LastError)
	}
	t.Logf("invalid configuration reported as: %s", inv.LastError)
	if got := deploymentCommit(t, cs, ns, "web"); got != good {
		t.Errorf("Deployment web moved to %q while the configuration is invalid; want %s", got, good)
	}

	// fix it → Ready again at the new commit
	fixed := r.commit("fixed", map[string]string{".release.yaml": webApp})
	d.waitReadyAt(app, "feature/login", fixed, 60*time.Second)

	// delete the branch → namespace gone; main untouched
	r.deleteBranch("feature/login")
	eventually(t, 90*time.Second, "namespace "+ns+" deleted", func() bool { return namespaceGone(cs, ns) })
	eventually(t, 10*time.Second, "feature/login gone from status", func() bool { return d.env(app, "feature/login") == nil })
	if namespaceGone(cs, app+"-main") {
		t.Errorf("namespace %s-main was deleted too", app)
	}
}
