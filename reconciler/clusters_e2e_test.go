package reconciler_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/server"
)

// Two real clusters, an app on each, and a third app whose template's
// context moves one branch to the second cluster: all reconciled where they
// belong. The second cluster stopped → the first goes on deploying; the
// second's environment shows the cluster's error in status and metrics and
// is left alone; started again → the same namespace (nothing deleted or
// re-created) converges to the commit pushed while it was down.
func TestTwoClusters(t *testing.T) {
	cs := testcluster.Clientset(t)
	second := testcluster.Second(t)
	cs2 := second.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app1, app2 := appName(t), appName(t)
	cleanupApp(t, cs2, app2)
	r1, r2 := newRepo(t, webApp), newRepo(t, webApp)
	// app1's branch "far" asks for the second cluster by its template's context.
	r1.on("far")
	far := r1.commit("to the second cluster", map[string]string{".release.yaml": "context: second\n" + webApp})
	r1.on("main")
	r1.on("mover") // on the first cluster until moved while the second is down
	r1.on("main")
	cleanupApp(t, cs2, app1)
	cfg := newConfig(t, own, fmt.Sprintf(`apps:
- {name: %s, repo: %s, poll_interval: 1h}
- {name: %s, repo: %s, poll_interval: 1h, cluster: second}
clusters:
  second: {kubeconfig: %s}
defaults: {domain: test.local}
`, app1, r1.dir, app2, r2.dir, second.Kubeconfig))
	d := startFleet(t, cfg, map[string]*testcluster.Cluster{"second": second})
	ctx := context.Background()

	e1 := d.waitPhase(app1, "main", reconciler.PhaseReady, 90*time.Second)
	e2 := d.waitPhase(app2, "main", reconciler.PhaseReady, 90*time.Second)
	ef := d.waitReadyAt(app1, "far", far, 90*time.Second)
	em := d.waitPhase(app1, "mover", reconciler.PhaseReady, 90*time.Second)
	if e1.Cluster != config.DefaultCluster || e2.Cluster != "second" || ef.Cluster != "second" {
		t.Errorf("clusters in status: %s@main %q, %s@main %q, %s@far %q; want default, second, second", app1, e1.Cluster, app2, e2.Cluster, app1, ef.Cluster)
	}
	for _, c := range []struct {
		cs      kubernetes.Interface
		ns      string
		present bool
	}{{cs, e1.Namespace, true}, {cs2, e1.Namespace, false}, {cs2, e2.Namespace, true}, {cs, e2.Namespace, false}, {cs2, ef.Namespace, true}, {cs, ef.Namespace, false}} {
		_, err := c.cs.CoreV1().Namespaces().Get(ctx, c.ns, metav1.GetOptions{})
		if (err == nil) != c.present {
			t.Errorf("namespace %s present=%v on the wrong cluster (error %v)", c.ns, err == nil, err)
		}
	}
	before, err := cs2.CoreV1().Namespaces().Get(ctx, e2.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	second.Stop(t)
	stopped := true
	t.Cleanup(func() {
		if stopped {
			second.Start(t)
		}
	})
	eventually(t, 30*time.Second, "arbor_cluster_up{cluster=second} 0", func() bool {
		v, ok := gather(t, d.reg, "arbor_cluster_up", func(l map[string]string) bool { return l["cluster"] == "second" })
		return ok && v == 0
	})
	// The first cluster is unaffected: a new commit is deployed.
	c1 := r1.commit("while the second is down", map[string]string{"a.txt": "1"})
	d.waitReadyAt(app1, "main", c1, 60*time.Second)
	if got := deploymentCommit(t, cs, e1.Namespace, "web"); got != c1 {
		t.Errorf("Deployment on the first cluster carries %q, want %s", got, c1)
	}
	// The second's environment shows why it waits.
	c2 := r2.commit("pushed while the cluster is down", map[string]string{"b.txt": "1"})
	var down *reconciler.EnvironmentStatus
	eventually(t, 60*time.Second, app2+"@main showing the cluster's error", func() bool {
		down = d.env(app2, "main")
		return down != nil && strings.Contains(down.ClusterError, "second") && down.Phase == reconciler.PhaseFailed
	})
	t.Logf("while down: phase %s, lastError %q, clusterError %q", down.Phase, down.LastError, down.ClusterError)
	// A branch moved to the cluster that is down keeps its environment on
	// the first, serving, until the new one is Ready (make before break).
	r1.on("mover")
	moved := r1.commit("move to the second cluster", map[string]string{".release.yaml": "context: second\n" + webApp})
	var kept *reconciler.EnvironmentStatus
	eventually(t, 60*time.Second, app1+"@mover kept on the first cluster while moving", func() bool {
		kept = envOn(d, app1, "mover", config.DefaultCluster)
		return kept != nil && strings.Contains(kept.Message, "moving to cluster second")
	})
	if kept.Phase != reconciler.PhaseReady || kept.Namespace != em.Namespace {
		t.Errorf("the environment kept while moving: phase %s in %s, want Ready in %s", kept.Phase, kept.Namespace, em.Namespace)
	}
	if ns, err := cs.CoreV1().Namespaces().Get(ctx, em.Namespace, metav1.GetOptions{}); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("namespace %s on the first cluster removed before the move completed: %v", em.Namespace, err)
	}
	if up := d.env(app1, "main"); up == nil || up.ClusterError != "" || up.Phase != reconciler.PhaseReady {
		t.Errorf("%s@main on the first cluster while the second is down: %+v", app1, up)
	}

	second.Start(t)
	stopped = false
	d.waitReadyAt(app2, "main", c2, 120*time.Second)
	after, err := cs2.CoreV1().Namespaces().Get(ctx, e2.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.UID != before.UID || after.DeletionTimestamp != nil {
		t.Errorf("namespace %s was re-created or is being deleted: uid %s → %s, deletion %v", e2.Namespace, before.UID, after.UID, after.DeletionTimestamp)
	}
	if got := deploymentCommit(t, cs2, e2.Namespace, "web"); got != c2 {
		t.Errorf("Deployment on the second cluster carries %q, want %s", got, c2)
	}
	if e := d.env(app2, "main"); e == nil || e.ClusterError != "" {
		t.Errorf("after the cluster's return: %+v", e)
	}
	// The moved branch is Ready on the second cluster, then gone from the first.
	eventually(t, 120*time.Second, app1+"@mover Ready on the second cluster", func() bool {
		e := envOn(d, app1, "mover", "second")
		return e != nil && e.Phase == reconciler.PhaseReady && e.Commit == moved
	})
	eventually(t, 120*time.Second, "namespace "+em.Namespace+" removed from the first cluster", func() bool {
		ns, err := cs.CoreV1().Namespaces().Get(ctx, em.Namespace, metav1.GetOptions{})
		return err != nil || ns.DeletionTimestamp != nil
	})
}

// envOn is app@branch's environment on cluster ("" in status: the default).
func envOn(d *daemon, app, branch, cluster string) *reconciler.EnvironmentStatus {
	for _, e := range d.environments(app) {
		c := e.Cluster
		if c == "" {
			c = config.DefaultCluster
		}
		if e.Branch == branch && c == cluster {
			return &e
		}
	}
	return nil
}

// cleanupApp deletes app's namespaces on cs when the test ends.
func cleanupApp(t *testing.T, cs kubernetes.Interface, app string) {
	t.Cleanup(func() {
		ctx := context.Background()
		l, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=arbor,arbor.dev/app=" + app})
		if err != nil {
			return
		}
		for _, ns := range l.Items {
			_ = cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		}
	})
}

// startFleet runs the daemon on the test cluster (the default) and on each
// of others, as arbor run does, leading without a lease.
func startFleet(t *testing.T, cfg *config.Config, others map[string]*testcluster.Cluster) *daemon {
	t.Helper()
	restCfg := testcluster.Config(t)
	reg := prometheus.NewRegistry()
	m, err := reconciler.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	restCfg.Wrap(m.WrapTransport)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	parts, err := reconciler.Wire(ctx, reconciler.WireOptions{
		Config: cfg, REST: restCfg, Registry: reg, Metrics: m, CacheDir: t.TempDir(),
		Log: testLogger(t), WaitTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	parts.Options.RetryMax = 2 * time.Second
	home, err := parts.ForCluster(config.DefaultCluster, restCfg)
	if err != nil {
		t.Fatal(err)
	}
	members := []reconciler.Options{home}
	for name, c := range others {
		rc := c.Config(t)
		rc.Wrap(m.WrapTransport)
		o, err := parts.ForCluster(name, rc)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, o)
	}
	fleet, err := reconciler.NewFleet(members)
	if err != nil {
		t.Fatal(err)
	}
	fleet.HealthEvery = 500 * time.Millisecond
	d := &daemon{t: t, rec: fleet.Home(), reg: reg, cs: home.Kube, cfg: cfg, cancel: cancel, done: make(chan struct{})}
	d.srv = httptest.NewServer(server.New(server.Routes{
		Apps:         func() any { return fleet.Apps() },
		Environments: func(app string) (any, bool) { return fleet.Environments(app), fleet.HasApp(app) },
		Ready:        fleet.Ready, Metrics: fleet.MetricsHandler(reg), Hooks: parts.Hooks,
		OpenReads: true, // the tests read status without a token
	}, server.Options{}))
	if err := fleet.Start(ctx); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(d.done)
		_ = fleet.Lead(ctx)
	}()
	t.Cleanup(d.stop)
	return d
}

// A cluster's kubeconfig in a Secret of arbor's namespace: read through the
// home cluster and used; a Secret without the key, or with something that
// is not a kubeconfig, is an error naming the Secret and not its content.
func TestClusterRESTFromSecret(t *testing.T) {
	cs := testcluster.Clientset(t)
	second := testcluster.Second(t)
	own := testcluster.Namespace(t, cs)
	ctx := context.Background()
	kc, err := os.ReadFile(second.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]map[string][]byte{
		"good": {"kubeconfig": kc}, "nokey": {"config": kc}, "garbage": {"kubeconfig": []byte("sekrit: [")},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}
		if _, err := cs.CoreV1().Secrets(own).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := reconciler.ClusterREST(ctx, cs, own, config.Cluster{KubeconfigSecret: "good"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubernetes.NewForConfigOrDie(rc).Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		t.Fatalf("the cluster from the Secret does not answer: %v", err)
	}
	if rc.Host != second.Config(t).Host {
		t.Errorf("host %s, want the second cluster's %s", rc.Host, second.Config(t).Host)
	}
	for _, name := range []string{"nokey", "garbage", "missing"} {
		_, err := reconciler.ClusterREST(ctx, cs, own, config.Cluster{KubeconfigSecret: name})
		if err == nil || !strings.Contains(err.Error(), own+"/"+name) || strings.Contains(err.Error(), "sekrit") {
			t.Errorf("secret %s: error %v, want one naming %s/%s without the content", name, err, own, name)
		}
	}
}
