package reconciler_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// ingressMetrics plays the cluster's ingress controller's metrics
// endpoint: real Prometheus exposition from client_golang, with
// ingress-nginx's request counter and labels (no ingress controller
// builds or runs on the test machine; docs/testing.md). fail makes it
// answer 500.
type ingressMetrics struct {
	srv      *httptest.Server
	requests *prometheus.CounterVec
	fail     atomic.Bool
}

func newIngressMetrics(t *testing.T) *ingressMetrics {
	reg := prometheus.NewRegistry()
	m := &ingressMetrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nginx_ingress_controller_requests", Help: "requests",
	}, []string{"namespace", "ingress", "status"})}
	reg.MustRegister(m.requests)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// TestIdlePauseSeesRequests: with the ingress controller's counters as the
// traffic source, an environment that keeps getting requests is not
// paused by idle_after while one that gets none is; once its requests
// stop it pauses idle_after after the last one seen. While the counters
// cannot be read, nothing pauses for idling; it pauses idle_after after
// the last failed reading once they read flat again.
func TestIdlePauseSeesRequests(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	r.on("quiet")
	r.commit("quiet", map[string]string{"f.txt": "q"})
	ingress := newIngressMetrics(t)
	clk := clocktesting.NewFakeClock(monday10)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\n  pause: {idle_after: 1h}\n"+
		"clusters:\n  default:\n    traffic: {kind: ingress-nginx, urls: ["+ingress.srv.URL+"/metrics], interval: 10m}\n"+
		"defaults: {domain: test.local}\n")
	d := startPauseDaemon(t, cfg, clk)
	busy := d.waitPhase(app, "main", reconciler.PhaseReady, 90*time.Second)
	d.waitPhase(app, "quiet", reconciler.PhaseReady, 90*time.Second)
	reads := func(result string) float64 {
		return counter(t, d.reg, "arbor_traffic_reads_total", func(l map[string]string) bool { return l["result"] == result })
	}
	eventually(t, 30*time.Second, "the first reading", func() bool { return reads("ok") >= 1 })
	round := func(result string) { // one interval on the clock, and its reading done
		t.Helper()
		n := reads(result)
		step(t, clk, 10*time.Minute)
		eventually(t, 30*time.Second, "a reading with result "+result, func() bool { return reads(result) > n })
	}

	for range 9 { // 10:00 → 11:30, main getting requests all along
		ingress.requests.WithLabelValues(busy.Namespace, "web", "200").Inc()
		round("ok")
	}
	lastRequest := clk.Now()
	q := waitPaused(t, d.daemon, app, "quiet", "idle")
	if want := monday10.Add(time.Hour); q.PausedSince.Before(want) {
		t.Errorf("quiet paused at %s, before its idle_after passed (%s)", q.PausedSince, want)
	}
	if e := d.env(app, "main"); !e.LastRequestAt.Equal(lastRequest) {
		t.Errorf("main's lastRequestAt %s, want the last reading that saw a request, %s", e.LastRequestAt, lastRequest)
	}
	for range 7 { // requests stop: 11:30 → 12:40
		round("ok")
	}
	m := waitPaused(t, d.daemon, app, "main", "idle")
	if want := lastRequest.Add(time.Hour); m.PausedSince.Before(want) {
		t.Errorf("main paused at %s while getting requests until %s (idle_after 1h)", m.PausedSince, lastRequest)
	}

	// The counters cannot be read: nothing pauses for idling.
	setPaused(t, d.daemon, app, "main", false)
	d.waitPhase(app, "main", reconciler.PhaseReady, 90*time.Second)
	ingress.fail.Store(true)
	for range 9 { // 90 minutes without a reading
		round("error")
	}
	lastFailure := clk.Now()
	time.Sleep(2 * time.Second) // room for a pause that should not come
	if e := d.env(app, "main"); e.Phase != reconciler.PhaseReady || e.Paused {
		t.Fatalf("main paused while its requests could not be read: %s %s", e.Phase, e.PauseReason)
	}
	ingress.fail.Store(false)
	for range 7 {
		round("ok")
	}
	m = waitPaused(t, d.daemon, app, "main", "idle")
	if want := lastFailure.Add(time.Hour); m.PausedSince.Before(want) {
		t.Errorf("main paused at %s, less than idle_after after the last failed reading (%s)", m.PausedSince, lastFailure)
	}
}
