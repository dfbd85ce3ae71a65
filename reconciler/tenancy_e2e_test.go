package reconciler_test

import (
	"context"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/state"
)

// snapshot is what a write to an environment would change: the namespace's
// and the Deployment's UID and resourceVersion, and the namespace's owner.
type snapshot struct {
	nsUID, depUID types.UID
	nsRV, depRV   string
	owner         apply.Owner
}

func takeSnapshot(t *testing.T, cs kubernetes.Interface, ns string) snapshot {
	t.Helper()
	ctx := context.Background()
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment %s/web: %v", ns, err)
	}
	return snapshot{nsUID: n.UID, depUID: d.UID, nsRV: n.ResourceVersion, depRV: d.ResourceVersion,
		owner: apply.Owner{apply.LabelInstall: n.Labels[apply.LabelInstall], apply.LabelApp: n.Labels[apply.LabelApp], apply.LabelEnv: n.Labels[apply.LabelEnv]}}
}

// TestTwoInstallsNeverTouchEachOther: two daemons with different install
// identities (their namespaces) run an app of the same name. The first has
// branch main; the second main and feature/b. The first's main is never
// written by the second, whose main shows Conflict naming the owner; the
// second's feature/b lives and the first never deletes it; after both
// restart, the same.
func TestTwoInstallsNeverTouchEachOther(t *testing.T) {
	cs := testcluster.Clientset(t)
	installA, installB := testcluster.Namespace(t, cs), testcluster.Namespace(t, cs)
	app := appName(t)
	repoA := newRepo(t, webApp)
	repoB := newRepo(t, webApp)
	repoB.on("feature/b")
	repoB.commit("b", nil)
	cfgA := newConfig(t, installA, "apps:\n- name: "+app+"\n  repo: "+repoA.dir+"\n  poll_interval: 1s\ndefaults: {domain: test.local}\n")
	cfgB := newConfig(t, installB, "apps:\n- name: "+app+"\n  repo: "+repoB.dir+"\n  poll_interval: 1s\ndefaults: {domain: test.local}\n")

	a := startDaemon(t, cfgA)
	mainA := a.waitReadyAt(app, "main", git(t, repoA.dir, "rev-parse", "main"), 90*time.Second)
	before := takeSnapshot(t, cs, mainA.Namespace)
	if before.owner[apply.LabelInstall] != installA {
		t.Fatalf("main's namespace is labelled install %q, want %q", before.owner[apply.LabelInstall], installA)
	}

	check := func(round string, b *daemon) {
		t.Helper()
		featB := b.waitReadyAt(app, "feature/b", git(t, repoB.dir, "rev-parse", "feature/b"), 90*time.Second)
		conflict := b.waitPhase(app, "main", reconciler.PhaseConflict, 60*time.Second)
		if !strings.Contains(conflict.LastError, installA) {
			t.Errorf("%s: the second install's main says %q, want the owner (install %s) named", round, conflict.LastError, installA)
		}
		time.Sleep(3 * time.Second) // three polls of each: a delete or a write would have happened
		if after := takeSnapshot(t, cs, mainA.Namespace); !reflect.DeepEqual(after, before) {
			t.Errorf("%s: the first install's main was written: %+v, then %+v", round, before, after)
		}
		if namespaceGone(cs, featB.Namespace) {
			t.Fatalf("%s: the second install's feature/b namespace was deleted", round)
		}
		if n, err := cs.CoreV1().Namespaces().Get(context.Background(), featB.Namespace, metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
			t.Errorf("%s: feature/b's namespace: %v, deleting %v", round, err, n.DeletionTimestamp)
		}
		for _, e := range a.environments(app) {
			if e.Branch == "feature/b" {
				t.Errorf("%s: the first install shows the second's feature/b: %+v", round, e)
			}
		}
	}
	b := startDaemon(t, cfgB)
	check("first run", b)

	a.stop()
	b.stop()
	a = startDaemon(t, cfgA)
	a.waitReadyAt(app, "main", git(t, repoA.dir, "rev-parse", "main"), 90*time.Second)
	b = startDaemon(t, cfgB)
	check("after a restart", b)
}

// TestAppsNeverWriteIntoEachOther: app P has branches main, api-main and
// api-next; app P-x's template says app: P. P-x keeps its own namespace.
// While P is the only app of its prefix, P@api-main gets namespace
// P-api-main. Then the config gains app P-api, whose main wants that same
// name: P@api-main keeps it (a name never changes under an environment),
// P-api@main shows Conflict naming the owner, the owner never flips, and a
// new branch of P that would meet P-api (api-next) gets a hashed name.
func TestAppsNeverWriteIntoEachOther(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	p := appName(t)
	r1 := newRepo(t, webApp)
	r1.on("api-main")
	r1.commit("api", nil)
	r2 := newRepo(t, webApp)
	r3 := newRepo(t, "app: "+p+"\n"+webApp)
	app := func(name, dir string) string { return "- {name: " + name + ", repo: " + dir + ", poll_interval: 1s}\n" }
	d := startDaemon(t, newConfig(t, own, "apps:\n"+app(p, r1.dir)+app(p+"-x", r3.dir)+"defaults: {domain: test.local}\n"))
	d.waitReadyAt(p, "main", git(t, r1.dir, "rev-parse", "main"), 90*time.Second)
	x := d.waitReadyAt(p+"-x", "main", git(t, r3.dir, "rev-parse", "main"), 90*time.Second)
	if x.Namespace != p+"-x-main" {
		t.Errorf("the app whose template says app: %s runs in %s, want %s-x-main", p, x.Namespace, p)
	}
	shared := p + "-api-main"
	if e := d.waitReadyAt(p, "api-main", git(t, r1.dir, "rev-parse", "api-main"), 90*time.Second); e.Namespace != shared {
		t.Fatalf("%s@api-main runs in %s, want %s", p, e.Namespace, shared)
	}
	first := takeSnapshot(t, cs, shared)
	d.stop()

	r1.on("api-next")
	r1.commit("next", nil)
	d = startDaemon(t, newConfig(t, own, "apps:\n"+app(p, r1.dir)+app(p+"-api", r2.dir)+app(p+"-x", r3.dir)+"defaults: {domain: test.local}\n"))
	c := d.waitPhase(p+"-api", "main", reconciler.PhaseConflict, 90*time.Second)
	if !strings.Contains(c.LastError, shared) || !strings.Contains(c.LastError, p) {
		t.Errorf("the conflict says %q, want the namespace and its owner named", c.LastError)
	}
	next := d.waitReadyAt(p, "api-next", git(t, r1.dir, "rev-parse", "api-next"), 90*time.Second)
	if next.Namespace == p+"-api-next" || !strings.HasPrefix(next.Namespace, p+"-api-next-") {
		t.Errorf("%s@api-next runs in %s, want a hashed name that %s-api's branch next cannot have", p, next.Namespace, p)
	}
	r2.commit("push to the loser's repo", map[string]string{"x.txt": "1"})
	r1.on("api-main")
	r1.commit("push to api-main", map[string]string{"y.txt": "1"})
	d.waitReadyAt(p, "api-main", git(t, r1.dir, "rev-parse", "api-main"), 90*time.Second)
	got := takeSnapshot(t, cs, shared)
	if !maps.Equal(got.owner, first.owner) || got.nsUID != first.nsUID {
		t.Errorf("the owner of %s flipped: %v, then %v", shared, first.owner, got.owner)
	}
	if e := d.env(p+"-api", "main"); e == nil || e.Phase != reconciler.PhaseConflict {
		t.Errorf("%s-api@main: %+v, want Conflict", p, e)
	}
	rec, err := state.Read(context.Background(), cs, shared)
	if err != nil || rec.App != p || rec.Branch != "api-main" {
		t.Errorf("the record in %s: %+v, %v; want %s@api-main", shared, rec, err, p)
	}
	// Nothing of P-x or P-api in P's namespaces.
	for _, ns := range []string{p + "-main", shared, next.Namespace} {
		for _, other := range []string{p + "-x", p + "-api"} {
			deps, err := cs.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{LabelSelector: apply.LabelApp + "=" + other})
			if err != nil || len(deps.Items) != 0 {
				t.Errorf("%s holds %d Deployments of %s (%v)", ns, len(deps.Items), other, err)
			}
		}
	}
}

// TestUpgradeAdoptsEnvironmentsWithoutInstallLabel: an environment written
// before install identities (no install label on its namespace and record)
// is adopted by the install that runs its app, without re-creation.
func TestUpgradeAdoptsEnvironmentsWithoutInstallLabel(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1s\ndefaults: {domain: test.local}\n")
	d := startDaemon(t, cfg)
	env := d.waitReadyAt(app, "main", git(t, r.dir, "rev-parse", "main"), 90*time.Second)
	d.stop()
	before := takeSnapshot(t, cs, env.Namespace)

	ctx := context.Background()
	strip := []byte(`{"metadata":{"labels":{"` + apply.LabelInstall + `":null}}}`)
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, env.Namespace, types.MergePatchType, strip, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps(env.Namespace).Patch(ctx, state.ConfigMapName, types.MergePatchType, strip, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	d = startDaemon(t, cfg)
	eventually(t, 60*time.Second, "the install label back on the namespace", func() bool {
		n, err := cs.CoreV1().Namespaces().Get(ctx, env.Namespace, metav1.GetOptions{})
		return err == nil && n.Labels[apply.LabelInstall] == own
	})
	d.waitPhase(app, "main", reconciler.PhaseReady, 60*time.Second)
	after := takeSnapshot(t, cs, env.Namespace)
	if after.nsUID != before.nsUID || after.depUID != before.depUID {
		t.Errorf("adoption re-created the environment: namespace %s → %s, Deployment %s → %s", before.nsUID, after.nsUID, before.depUID, after.depUID)
	}
}

// TestHostHeldByAnotherEnvironment: two apps whose templates claim the same
// host (under the domain): the environment that serves it keeps it, the
// other shows Conflict naming the holder and writes nothing.
func TestHostHeldByAnotherEnvironment(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	first, second := appName(t), appName(t)
	host := "shared-" + first + ".test.local"
	tmpl := webApp + "hostnames:\n- web: " + host + "\n"
	r1, r2 := newRepo(t, tmpl), newRepo(t, tmpl)
	app := func(name, dir string) string { return "- {name: " + name + ", repo: " + dir + ", poll_interval: 1s}\n" }
	d := startDaemon(t, newConfig(t, own, "apps:\n"+app(first, r1.dir)+"defaults: {domain: test.local}\n"))
	holder := d.waitReadyAt(first, "main", git(t, r1.dir, "rev-parse", "main"), 90*time.Second)
	ing, err := cs.NetworkingV1().Ingresses(holder.Namespace).Get(context.Background(), first, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the holder's Ingress: %v", err)
	}
	d.stop()

	d = startDaemon(t, newConfig(t, own, "apps:\n"+app(first, r1.dir)+app(second, r2.dir)+"defaults: {domain: test.local}\n"))
	c := d.waitPhase(second, "main", reconciler.PhaseConflict, 60*time.Second)
	if !strings.Contains(c.LastError, host) || !strings.Contains(c.LastError, first+"@main") {
		t.Errorf("the conflict says %q, want the host and its holder named", c.LastError)
	}
	if !namespaceGone(cs, second+"-main") {
		t.Errorf("the second app's environment was created though its host is held")
	}
	after, err := cs.NetworkingV1().Ingresses(holder.Namespace).Get(context.Background(), first, metav1.GetOptions{})
	if err != nil || after.ResourceVersion != ing.ResourceVersion {
		t.Errorf("the holder's Ingress changed: %v (resourceVersion %s → %s)", err, ing.ResourceVersion, after.ResourceVersion)
	}
}
