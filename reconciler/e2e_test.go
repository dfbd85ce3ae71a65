package reconciler_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
	app := appName(t)
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

// A repository served over smart HTTP with basic auth: a pushed branch
// appears, a pushed commit updates it, a deleted branch goes; with the
// server down, or the credentials refused, nothing is deleted and the
// listing error is in status and metrics.
func TestHTTPRepositoryWithAuth(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	srv := newGitServer(t)
	r := newRepo(t, webApp)
	url := srv.serve(r, app)
	dir := t.TempDir()
	writeSecret(t, dir, "user", srv.user)
	writeSecret(t, dir, "pass", srv.pass)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+url+"\n  poll_interval: 1s\n  auth: {username_file: "+dir+"/user, password_file: "+dir+"/pass}\n")
	d := startDaemon(t, cfg)

	r.on("feature/pay")
	c1 := r.commit("pay", map[string]string{"pay.txt": "v1"})
	r.push("feature/pay")
	ns := d.waitReadyAt(app, "feature/pay", c1, 60*time.Second).Namespace
	c2 := r.commit("pay v2", map[string]string{"pay.txt": "v2"})
	r.push("feature/pay")
	d.waitReadyAt(app, "feature/pay", c2, 60*time.Second)
	if got := deploymentCommit(t, cs, ns, "web"); got != c2 {
		t.Fatalf("Deployment web carries %q, want %s", got, c2)
	}

	// wrong password: listing fails, nothing deleted
	writeSecret(t, dir, "pass", "wrong")
	r.pushDelete("feature/pay") // the branch is gone, but arbor cannot see the listing
	before := counter(t, d.reg, "arbor_listing_errors_total", nil)
	eventually(t, 30*time.Second, "listing errors with refused credentials", func() bool {
		return counter(t, d.reg, "arbor_listing_errors_total", nil) >= before+2
	})
	if a := d.apps()[0]; a.ListingError == "" || strings.Contains(a.ListingError, srv.pass) {
		t.Errorf("listing error %q: want an error that does not show the password", a.ListingError)
	}
	if namespaceGone(cs, ns) || d.env(app, "feature/pay") == nil {
		t.Fatal("environment deleted after a failed listing")
	}

	// server down: still nothing deleted
	writeSecret(t, dir, "pass", srv.pass)
	srv.Close()
	before = counter(t, d.reg, "arbor_listing_errors_total", nil)
	eventually(t, 30*time.Second, "listing errors with the server down", func() bool {
		return counter(t, d.reg, "arbor_listing_errors_total", nil) >= before+2
	})
	t.Logf("listing error with the server down: %s", d.apps()[0].ListingError)
	if namespaceGone(cs, ns) || d.env(app, "feature/pay") == nil {
		t.Fatal("environment deleted while the git server was down")
	}
	if namespaceGone(cs, app+"-main") {
		t.Fatal("main deleted while the git server was down")
	}
}

// Restart the served repository at the same address is not possible with
// httptest, so deletion over HTTP is covered by its own test.
func TestHTTPRepositoryBranchDeleted(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	srv := newGitServer(t)
	r := newRepo(t, webApp)
	url := srv.serve(r, app)
	dir := t.TempDir()
	writeSecret(t, dir, "user", srv.user)
	writeSecret(t, dir, "pass", srv.pass)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+url+"\n  poll_interval: 1s\n  auth: {username_file: "+dir+"/user, password_file: "+dir+"/pass}\n")
	d := startDaemon(t, cfg)
	r.on("feature/gone")
	c := r.commit("soon gone", nil)
	r.push("feature/gone")
	ns := d.waitReadyAt(app, "feature/gone", c, 60*time.Second).Namespace
	r.pushDelete("feature/gone")
	eventually(t, 90*time.Second, "namespace "+ns+" deleted", func() bool { return namespaceGone(cs, ns) })
	if namespaceGone(cs, app+"-main") {
		t.Fatal("main deleted")
	}
}

func writeSecret(t *testing.T, dir, name, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A Deployment deleted by hand comes back, and one edited by hand is put
// back, from the watch alone (the poll interval is an hour).
func TestDriftIsRepaired(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	d := startDaemon(t, newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\n"))
	ns := d.waitPhase(app, "main", reconciler.PhaseReady, 60*time.Second).Namespace
	ctx := context.Background()
	waitAdopted(t, d, app)

	if err := cs.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 30*time.Second, "Deployment web back", func() bool {
		_, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil
	})
	t.Logf("hand-deleted Deployment back after %s", time.Since(start).Round(time.Millisecond))

	var dep *appsv1.Deployment
	eventually(t, 30*time.Second, "the recreated Deployment adopted", func() bool {
		var err error
		if dep, err = cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil {
			return false
		}
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "arbor-environment", metav1.GetOptions{})
		if err != nil {
			return false
		}
		var st struct{ Fingerprints map[string]string }
		_ = json.Unmarshal([]byte(cm.Data["daemon-status"]), &st)
		return st.Fingerprints["apps/Deployment/"+ns+"/web"] == fmt.Sprintf("g%d", dep.Generation) &&
			string(dep.UID) != "" && dep.CreationTimestamp.Time.After(start.Add(-time.Second))
	})
	want := *dep.Spec.Replicas
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, want+3)
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "replicas put back", func() bool {
		dep, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && *dep.Spec.Replicas == want
	})
}

// waitAdopted waits until every environment of app is Ready with its
// fingerprints recorded (so that a change after it is a hand edit).
func waitAdopted(t *testing.T, d *daemon, app string) {
	t.Helper()
	eventually(t, 30*time.Second, "fingerprints adopted", func() bool {
		list, err := d.cs.CoreV1().ConfigMaps("").List(context.Background(), metav1.ListOptions{LabelSelector: "arbor.dev/app=" + app + ",arbor.dev/record=environment"})
		if err != nil || len(list.Items) == 0 {
			return false
		}
		for _, cm := range list.Items {
			s := cm.Data["daemon-status"]
			if !strings.Contains(s, `"phase":"Ready"`) || !strings.Contains(s, `"fingerprints"`) {
				return false
			}
		}
		return true
	})
}

// A no-op resync of unchanged environments sends no request to the API
// server: every verdict comes from the watch cache.
func TestNoopResyncSendsNoRequests(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	for _, b := range []string{"a", "b", "c", "d"} {
		r.on(b)
		r.commit(b, nil)
	}
	d := startDaemon(t, newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1s\n"))
	eventually(t, 90*time.Second, "five environments ready", func() bool {
		n := 0
		for _, e := range d.environments(app) {
			if e.Phase == reconciler.PhaseReady {
				n++
			}
		}
		return n == 5
	})
	waitAdopted(t, d, app)
	nonWatch := func(l map[string]string) bool { return l["verb"] != "watch" }
	reconciles := func() float64 {
		return mustCounter(t, d.reg, "arbor_reconcile_duration_seconds", func(l map[string]string) bool { return l["app"] == app })
	}
	// Both readings must exist: a missing series would read 0 twice and pass.
	req0, rec0 := mustCounter(t, d.reg, "arbor_api_requests_total", nonWatch), reconciles()
	if req0 == 0 {
		t.Fatal("creating five environments counted no API request: the counter does not see the daemon's requests")
	}
	eventually(t, 30*time.Second, "three resyncs of five environments", func() bool { return reconciles() >= rec0+15 })
	req1, rec1 := mustCounter(t, d.reg, "arbor_api_requests_total", nonWatch), reconciles()
	t.Logf("%v reconciles of unchanged environments sent %v API requests", rec1-rec0, req1-req0)
	if req1 != req0 {
		t.Errorf("no-op resyncs sent %v API requests, want 0", req1-req0)
	}
}

// A webhook with a bad signature is refused with 401 and triggers nothing;
// a good one triggers a listing at once.
func TestWebhookSignature(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	srv := newGitServer(t)
	r := newRepo(t, webApp)
	url := srv.serve(r, app)
	dir := t.TempDir()
	writeSecret(t, dir, "user", srv.user)
	writeSecret(t, dir, "pass", srv.pass)
	writeSecret(t, dir, "hook", "hook-secret")
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+url+"\n  poll_interval: 1h\n  auth: {username_file: "+dir+"/user, password_file: "+dir+"/pass}\nserver: {webhook_secret_file: "+dir+"/hook}\n")
	d := startDaemon(t, cfg)
	d.waitPhase(app, "main", reconciler.PhaseReady, 60*time.Second)
	first := *d.apps()[0].LastListing

	r.on("feature/hook")
	c := r.commit("hook", nil)
	r.push("feature/hook")
	body := `{"ref":"refs/heads/feature/hook","repository":{"clone_url":"` + url + `"}}`
	if code := postHook(t, d.srv.URL+"/hooks/github", body, "sha256=0000"); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: status %d, want 401", code)
	}
	if code := postHook(t, d.srv.URL+"/hooks/github", body, ""); code != http.StatusUnauthorized {
		t.Fatalf("no signature: status %d, want 401", code)
	}
	time.Sleep(2 * time.Second)
	if got := *d.apps()[0].LastListing; !got.Equal(first) || d.env(app, "feature/hook") != nil {
		t.Fatalf("a refused webhook triggered a listing (last listing %s, first %s)", got, first)
	}
	if code := postHook(t, d.srv.URL+"/hooks/github", body, sign("hook-secret", body)); code != http.StatusAccepted {
		t.Fatalf("good signature: status %d, want 202", code)
	}
	d.waitReadyAt(app, "feature/hook", c, 30*time.Second)
	if n := counter(t, d.reg, "arbor_webhook_deliveries_total", func(l map[string]string) bool { return l["result"] == "unauthorized" }); n != 2 {
		t.Errorf("unauthorized deliveries counted %v, want 2", n)
	}
}

func postHook(t *testing.T, url, body, sig string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// A namespace deleted by hand while its branch lives is created again once
// it is gone. While it terminates, the daemon looks again every couple of
// seconds, not on every deletion inside it.
func TestTerminatingNamespaceIsWaitedFor(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	d := startDaemon(t, newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\n"))
	ns := d.waitPhase(app, "main", reconciler.PhaseReady, 60*time.Second).Namespace
	ctx := context.Background()

	// A ConfigMap with a finalizer holds the namespace in Terminating.
	hold := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hold", Namespace: ns, Finalizers: []string{"arbor.dev/test-hold"}}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, hold, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	release := func() {
		_, _ = cs.CoreV1().ConfigMaps(ns).Patch(context.Background(), "hold", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	}
	t.Cleanup(release)
	reconciles := func() float64 {
		return counter(t, d.reg, "arbor_reconcile_duration_seconds", func(l map[string]string) bool { return l["app"] == app })
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "status waiting for the namespace", func() bool {
		st := d.env(app, "main")
		return st != nil && st.Phase == reconciler.PhasePending && strings.Contains(st.LastError, "terminating")
	})
	before := reconciles()
	time.Sleep(6 * time.Second)
	if n := reconciles() - before; n > 5 {
		t.Errorf("%v reconciles in 6 s while the namespace terminated, want a few", n)
	}
	release()
	eventually(t, 60*time.Second, "the environment back in a new namespace", func() bool {
		st := d.env(app, "main")
		if st == nil || st.Phase != reconciler.PhaseReady {
			return false
		}
		n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err == nil && n.DeletionTimestamp == nil
	})
}
