package reconciler_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/server"
)

// pausedApp has what a pause must keep and what it must stop: a Deployment
// of two replicas with a Secret, a database with a volume, a CronJob, and
// an Ingress.
const pausedApp = `services:
- name: web
  image: nginx:1.27-alpine
  replicas: 2
  ports:
  - {type: node_port, port: 80}
  envs:
  - {key: API_TOKEN, value: not-a-real-token, secret: true}
- name: db
  image: postgres:16
  ports:
  - {type: container_port, port: 5432}
  volumes:
  - {name: db_data, type: persistent, mount_path: /var/lib/postgresql/data}
  storage: {size: 1Gi}
cron_jobs:
- name: report
  from_services: web
  schedule: "0 3 * * *"
`

// pauseDaemon is a daemon with a waking endpoint: arbor's waking Service
// (port "wake") in its namespace, and the endpoint on a test server.
type pauseDaemon struct {
	*daemon
	wake *httptest.Server
}

func startPauseDaemon(t testing.TB, cfg *config.Config, clk *clocktesting.FakeClock) *pauseDaemon {
	t.Helper()
	cs := testcluster.Clientset(t)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "arbor", Namespace: cfg.Namespace},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 8080, TargetPort: intstr.FromInt(8080)},
			{Name: "wake", Port: 8081, TargetPort: intstr.FromInt(8081)},
		}},
	}
	if _, err := cs.CoreV1().Services(cfg.Namespace).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	d := startDaemonWith(t, cfg, testLogger(t), func(o *reconciler.Options) {
		if clk != nil {
			o.Clock = clk
		}
	})
	rec := d.rec
	wake := httptest.NewServer(server.WakeHandler(func(ctx context.Context, host string) (server.WakeState, error) {
		res, err := rec.Wake(ctx, host)
		switch {
		case !res.Found:
			return server.WakeUnknown, err
		case res.Awake:
			return server.WakeAwake, err
		}
		return server.WakeWaking, err
	}, server.Options{Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(wake.Close)
	return &pauseDaemon{daemon: d, wake: wake}
}

// request sends GET / with host as the Host header to the waking endpoint.
func (d *pauseDaemon) request(host string) (int, string) {
	d.t.Helper()
	req, err := http.NewRequest(http.MethodGet, d.wake.URL+"/some/path?x=1", nil)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// workloads is what a pause changes and a resume must put back, as the
// cluster has it.
type workloads struct {
	Replicas map[string]int32 // Deployments and StatefulSets
	Suspend  map[string]bool  // CronJobs
	Ingress  map[string]networkingv1.IngressSpec
}

func readWorkloads(t testing.TB, cs kubernetes.Interface, ns string) workloads {
	t.Helper()
	ctx := context.Background()
	w := workloads{Replicas: map[string]int32{}, Suspend: map[string]bool{}, Ingress: map[string]networkingv1.IngressSpec{}}
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		w.Replicas["Deployment/"+d.Name] = *d.Spec.Replicas
	}
	sts, err := cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts.Items {
		w.Replicas["StatefulSet/"+s.Name] = *s.Spec.Replicas
	}
	cjs, err := cs.BatchV1().CronJobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cjs.Items {
		w.Suspend[c.Name] = c.Spec.Suspend != nil && *c.Spec.Suspend
	}
	ings, err := cs.NetworkingV1().Ingresses(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ings.Items {
		w.Ingress[i.Name] = i.Spec
	}
	return w
}

// kept are the UIDs of what a pause keeps: PVCs, Secrets, ConfigMaps.
func kept(t testing.TB, cs kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	pvcs, err := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pvcs.Items {
		out["PersistentVolumeClaim/"+p.Name] = string(p.UID)
	}
	secrets, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		out["Secret/"+s.Name] = string(s.UID)
	}
	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cms.Items {
		out["ConfigMap/"+c.Name] = string(c.UID)
	}
	return out
}

// checkPaused fails unless every workload of ns is at zero, every CronJob
// suspended and every Ingress backend the waking Service.
func checkPaused(t testing.TB, cs kubernetes.Interface, ns string) {
	t.Helper()
	w := readWorkloads(t, cs, ns)
	if len(w.Replicas) == 0 || len(w.Ingress) == 0 {
		t.Fatalf("%s: no workloads or no Ingress to check: %+v", ns, w)
	}
	for name, n := range w.Replicas {
		if n != 0 {
			t.Errorf("%s: %s has %d replicas while paused", ns, name, n)
		}
	}
	for name, s := range w.Suspend {
		if !s {
			t.Errorf("%s: CronJob %s not suspended while paused", ns, name)
		}
	}
	for name, spec := range w.Ingress {
		for _, rule := range spec.Rules {
			for _, p := range rule.HTTP.Paths {
				if p.Backend.Service == nil || p.Backend.Service.Name != "arbor-wake" {
					t.Errorf("%s: Ingress %s still routes %s%s to %+v while paused", ns, name, rule.Host, p.Path, p.Backend)
				}
			}
		}
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Get(context.Background(), "arbor-wake", metav1.GetOptions{}); err != nil {
		t.Errorf("%s: the waking route's EndpointSlice: %v", ns, err)
	}
}

func waitPaused(t testing.TB, d *daemon, app, branch, reason string) *reconciler.EnvironmentStatus {
	t.Helper()
	var last *reconciler.EnvironmentStatus
	eventually(t, 90*time.Second, app+"@"+branch+" paused by "+reason, func() bool {
		last = d.env(app, branch)
		return last != nil && last.Phase == reconciler.PhasePaused && last.Paused && last.PauseReason == reason
	})
	return last
}

func setPaused(t testing.TB, d *daemon, app, env string, paused bool) {
	t.Helper()
	resp, err := d.rec.SetPaused(context.Background(), app, env, paused)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Paused != paused || resp.Requested == "" || resp.Namespace == "" {
		t.Fatalf("SetPaused: %+v", resp)
	}
}

// TestPauseKeepsDataAndResumesExactly pauses an environment through the
// reconciler's API method: its Deployments and StatefulSets go to zero, its
// CronJob is suspended, its Ingress points at the waking route, and its
// PVCs, Secrets and ConfigMaps stay (the same objects). A hand edit while
// paused is repaired to paused; a restarted daemon keeps it paused; the
// resume brings back exactly what ran before.
func TestPauseKeepsDataAndResumesExactly(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, pausedApp)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\n")
	d := startPauseDaemon(t, cfg, nil)
	env := d.waitReadyAt(app, "main", git(t, r.dir, "rev-parse", "HEAD"), 90*time.Second)
	ns := env.Namespace
	before, keptBefore := readWorkloads(t, cs, ns), kept(t, cs, ns)
	if before.Replicas["Deployment/web"] != 2 || len(before.Suspend) != 1 || before.Suspend["report"] || len(before.Ingress) == 0 {
		t.Fatalf("the environment before the pause is not what the test expects: %+v", before)
	}
	if !hasKind(keptBefore, "PersistentVolumeClaim/") || !hasKind(keptBefore, "Secret/") {
		t.Fatalf("no PVC or Secret to keep: %v", keptBefore)
	}
	if _, err := d.rec.SetPaused(context.Background(), app, "no-such-branch", true); err == nil || !strings.Contains(err.Error(), "no environment") {
		t.Errorf("SetPaused of a missing environment: %v", err)
	}

	setPaused(t, d.daemon, app, "main", true)
	waitPaused(t, d.daemon, app, "main", "api")
	checkPaused(t, cs, ns)
	if got := kept(t, cs, ns); !reflect.DeepEqual(got, keptBefore) {
		t.Errorf("a pause changed what it keeps:\nbefore %v\nafter  %v", keptBefore, got)
	}

	// a hand edit while paused is drift: repaired to the paused view
	scale := []byte(`{"spec":{"replicas":3}}`)
	if _, err := cs.AppsV1().Deployments(ns).Patch(context.Background(), "web", "application/merge-patch+json", scale, metav1.PatchOptions{FieldManager: "someone"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the paused Deployment back at zero", func() bool {
		return readWorkloads(t, cs, ns).Replicas["Deployment/web"] == 0
	})

	// a restarted daemon reads the pause from the record and keeps it
	d.stop()
	d = startPauseDaemon(t, cfg, nil)
	waitPaused(t, d.daemon, app, "main", "api")
	checkPaused(t, cs, ns)

	setPaused(t, d.daemon, app, "main", false)
	d.waitPhase(app, "main", reconciler.PhaseReady, 90*time.Second)
	after := readWorkloads(t, cs, ns)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("the resume did not bring back what ran:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := kept(t, cs, ns); !reflect.DeepEqual(got, keptBefore) {
		t.Errorf("pause and resume changed what they keep:\nbefore %v\nafter  %v", keptBefore, got)
	}
	if _, err := cs.CoreV1().Services(ns).Get(context.Background(), "arbor-wake", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the waking Service outlived the pause: %v", err)
	}
	if e := d.env(app, "main"); e == nil || e.Paused {
		t.Errorf("status after the resume: %+v", e)
	}
}

func hasKind(m map[string]string, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// monday10 is a Monday, 10:00 UTC.
var monday10 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// step moves the fake clock on once the daemon's pause loop waits on it.
func step(t testing.TB, clk *clocktesting.FakeClock, d time.Duration) {
	t.Helper()
	eventually(t, 30*time.Second, "the pause loop waiting on the clock", clk.HasWaiters)
	clk.Step(d)
}

// TestScheduleAndIdlePause runs a schedule (08:00-19:00 UTC every day) on an
// injected clock: a feature branch pauses at 19:00 and resumes at 08:00,
// while main, exempted by an override, runs on; a branch with only
// idle_after (another override) pauses once it has been idle for 2h.
func TestScheduleAndIdlePause(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	r.on("feature-x")
	r.commit("feature", map[string]string{"f.txt": "x"})
	r.on("idle-y")
	r.commit("idle", map[string]string{"f.txt": "y"})
	clk := clocktesting.NewFakeClock(monday10)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\n"+
		"  pause:\n    schedule: {days: every_day, hours: \"08:00-19:00\"}\n"+
		"    overrides:\n    - branches: [main]\n    - branches: [\"idle-*\"]\n      idle_after: 2h\n"+
		"defaults: {domain: test.local}\n")
	d := startPauseDaemon(t, cfg, clk)
	for _, b := range []string{"main", "feature-x", "idle-y"} {
		d.waitPhase(app, b, reconciler.PhaseReady, 90*time.Second)
	}
	step(t, clk, time.Hour) // 11:00: nothing is due
	step(t, clk, 90*time.Minute)
	env := waitPaused(t, d.daemon, app, "idle-y", "idle") // idle since 10:00, paused at 12:00
	checkPaused(t, cs, env.Namespace)
	if e := d.env(app, "feature-x"); e.Phase != reconciler.PhaseReady {
		t.Fatalf("feature-x within its hours: %s", e.Phase)
	}

	step(t, clk, 9*time.Hour) // 21:30
	env = waitPaused(t, d.daemon, app, "feature-x", "schedule")
	checkPaused(t, cs, env.Namespace)
	if at := env.PausedSince; !at.Equal(monday10.Add(11*time.Hour + 30*time.Minute)) {
		t.Errorf("paused at %s, want 21:30 by the injected clock", at)
	}
	step(t, clk, 11*time.Hour) // Tuesday 08:30
	d.waitPhase(app, "feature-x", reconciler.PhaseReady, 90*time.Second)
	if w := readWorkloads(t, cs, env.Namespace); w.Replicas["Deployment/web"] != 1 {
		t.Errorf("feature-x after the morning: %+v", w.Replicas)
	}
	if e := d.env(app, "main"); e.Phase != reconciler.PhaseReady || e.Paused {
		t.Errorf("main, exempt by its override, was paused: %+v", e)
	}
	if e := d.env(app, "idle-y"); e.Phase != reconciler.PhasePaused {
		t.Errorf("idle-y, with no schedule, resumed in the morning: %s", e.Phase)
	}
}

// TestWakeOnRequest pauses two environments and sends requests to the
// waking endpoint: an unknown host, and a host that only contains a paused
// one, get 404 and wake nothing; the paused host gets the waking page and
// wakes its environment only — which resumes, its Ingress pointing back
// once it is Ready, the page then saying so.
func TestWakeOnRequest(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	r.on("feature-a")
	r.commit("a", map[string]string{"f.txt": "a"})
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\n")
	d := startPauseDaemon(t, cfg, nil)
	nsOf := map[string]string{}
	before := map[string]workloads{}
	for _, b := range []string{"main", "feature-a"} {
		e := d.waitPhase(app, b, reconciler.PhaseReady, 90*time.Second)
		nsOf[b] = e.Namespace
		before[b] = readWorkloads(t, cs, e.Namespace)
		setPaused(t, d.daemon, app, b, true)
	}
	hostOf := map[string]string{}
	for _, b := range []string{"main", "feature-a"} {
		waitPaused(t, d.daemon, app, b, "api")
		checkPaused(t, cs, nsOf[b])
		for _, spec := range readWorkloads(t, cs, nsOf[b]).Ingress {
			hostOf[b] = spec.Rules[0].Host
		}
	}
	if hostOf["main"] == "" || hostOf["main"] == hostOf["feature-a"] {
		t.Fatalf("hosts: %v", hostOf)
	}
	for _, host := range []string{"unknown.test.local", "x" + hostOf["main"], hostOf["main"] + ".evil.example", ""} {
		if code, body := d.request(host); code != http.StatusNotFound {
			t.Errorf("host %q: %d %s, want 404", host, code, body)
		}
	}
	code, body := d.request(strings.ToUpper(hostOf["feature-a"]) + ":80")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "Waking up") || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("the paused host: %d %s", code, body)
	}
	d.waitPhase(app, "feature-a", reconciler.PhaseReady, 90*time.Second)
	if got := readWorkloads(t, cs, nsOf["feature-a"]); !reflect.DeepEqual(got, before["feature-a"]) {
		t.Errorf("woken feature-a is not as before:\nbefore %+v\nafter  %+v", before["feature-a"], got)
	}
	code, body = d.request(hostOf["feature-a"])
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "Ready") || strings.Contains(body, "Waking up") {
		t.Errorf("a late request for the woken host: %d %s", code, body)
	}
	// nothing woke main: still paused, and no wake request on its namespace
	if e := d.env(app, "main"); e.Phase != reconciler.PhasePaused {
		t.Errorf("main woke with feature-a: %s", e.Phase)
	}
	checkPaused(t, cs, nsOf["main"])
	ns, err := cs.CoreV1().Namespaces().Get(context.Background(), nsOf["main"], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := ns.Annotations[reconciler.AnnotationWakeRequested]; v != "" {
		t.Errorf("a wake request was recorded for main: %s", v)
	}
}

// TestPushWhilePaused pushes to two paused environments: the one whose
// branch the app's override lets wake on push resumes at the new commit;
// the other is updated to the new commit and stays paused.
func TestPushWhilePaused(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	for _, b := range []string{"keeps", "wakes"} {
		r.on(b)
		r.commit(b, map[string]string{"f.txt": b})
	}
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\n"+
		"  pause:\n    overrides:\n    - branches: [wakes]\n      wake_on_push: true\n"+
		"defaults: {domain: test.local}\n")
	d := startPauseDaemon(t, cfg, nil)
	nsOf := map[string]string{}
	for _, b := range []string{"keeps", "wakes"} {
		nsOf[b] = d.waitPhase(app, b, reconciler.PhaseReady, 90*time.Second).Namespace
		setPaused(t, d.daemon, app, b, true)
	}
	for _, b := range []string{"keeps", "wakes"} {
		waitPaused(t, d.daemon, app, b, "api")
	}
	commits := map[string]string{}
	for _, b := range []string{"keeps", "wakes"} {
		r.on(b)
		commits[b] = r.commit("push while paused", map[string]string{"g.txt": b})
	}
	e := d.waitReadyAt(app, "wakes", commits["wakes"], 90*time.Second)
	if e.Paused {
		t.Errorf("wakes: %+v", e)
	}
	if w := readWorkloads(t, cs, nsOf["wakes"]); w.Replicas["Deployment/web"] != 1 {
		t.Errorf("wakes after its push: %+v", w.Replicas)
	}
	eventually(t, 90*time.Second, "keeps updated to its new commit", func() bool {
		e := d.env(app, "keeps")
		return e != nil && e.Commit == commits["keeps"] && e.Phase == reconciler.PhasePaused
	})
	if got := deploymentCommit(t, cs, nsOf["keeps"], "web"); got != commits["keeps"] {
		t.Errorf("keeps: Deployment at commit %q, want %s", got, commits["keeps"])
	}
	checkPaused(t, cs, nsOf["keeps"])
}

// TestResumeRoutesOnlyWhenReady resumes an environment whose pods cannot
// start (a push made while it was paused asks for a node that does not
// exist): its Deployment is scaled back, but its Ingress keeps pointing at
// the waking route for as long as the Deployment is not ready, so no
// request reaches a pod that is not ready.
func TestResumeRoutesOnlyWhenReady(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\n")
	d := startPauseDaemon(t, cfg, nil)
	ns := d.waitPhase(app, "main", reconciler.PhaseReady, 90*time.Second).Namespace
	setPaused(t, d.daemon, app, "main", true)
	waitPaused(t, d.daemon, app, "main", "api")
	c := r.commit("no node for it", map[string]string{".release.yaml": webApp + "  node_selector:\n  - {key: pool, value: nowhere}\n"})
	eventually(t, 90*time.Second, "the paused environment at the new commit", func() bool {
		e := d.env(app, "main")
		return e != nil && e.Commit == c && e.Phase == reconciler.PhasePaused
	})
	setPaused(t, d.daemon, app, "main", false)
	eventually(t, 30*time.Second, "the Deployment scaled back", func() bool {
		return readWorkloads(t, cs, ns).Replicas["Deployment/web"] == 1
	})
	for range 20 { // two seconds of a resume that cannot finish
		if e := d.env(app, "main"); e.Phase == reconciler.PhaseReady {
			t.Fatalf("Ready with pods that cannot start: %+v", e)
		}
		checkRoutedToWaker(t, cs, ns)
		time.Sleep(100 * time.Millisecond)
	}
}

func checkRoutedToWaker(t testing.TB, cs kubernetes.Interface, ns string) {
	t.Helper()
	for name, spec := range readWorkloads(t, cs, ns).Ingress {
		for _, rule := range spec.Rules {
			for _, p := range rule.HTTP.Paths {
				if p.Backend.Service == nil || p.Backend.Service.Name != "arbor-wake" {
					t.Fatalf("%s: Ingress %s routes %s to %+v before the environment is ready", ns, name, rule.Host, p.Backend)
				}
			}
		}
	}
}

// TestPauseWithWakingOff: with server.wake_listen off a pause still scales
// to zero, but leaves the Ingress as rendered and adds no waking route, and
// no host is known to the waking endpoint.
func TestPauseWithWakingOff(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\nserver: {wake_listen: \"off\"}\n")
	d := startPauseDaemon(t, cfg, nil)
	ns := d.waitPhase(app, "main", reconciler.PhaseReady, 90*time.Second).Namespace
	before := readWorkloads(t, cs, ns)
	setPaused(t, d.daemon, app, "main", true)
	waitPaused(t, d.daemon, app, "main", "api")
	w := readWorkloads(t, cs, ns)
	if w.Replicas["Deployment/web"] != 0 || !reflect.DeepEqual(w.Ingress, before.Ingress) {
		t.Errorf("paused with waking off: %+v; want replicas 0 and the Ingress as before %+v", w, before.Ingress)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Get(context.Background(), "arbor-wake", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a waking route with waking off: %v", err)
	}
	for _, spec := range before.Ingress {
		if code, _ := d.request(spec.Rules[0].Host); code != http.StatusNotFound {
			t.Errorf("the waking endpoint knows %s with waking off: %d", spec.Rules[0].Host, code)
		}
	}
}
