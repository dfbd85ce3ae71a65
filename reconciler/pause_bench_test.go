package reconciler_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// resumeSamples is the number of wake-ups BenchmarkResumeOnRequest times.
const resumeSamples = 10

// BenchmarkResumeOnRequest measures the time from a request for a paused
// environment's host at the waking endpoint to the environment Ready again:
// scaled back, every object ready, its Ingress pointing back at it. The
// environment has five objects (Namespace, ConfigMap, Service, Deployment,
// Ingress). It also reports the daemon's API requests per paused
// environment per simulated hour while nothing happens
// (pausedRequests).
func BenchmarkResumeOnRequest(b *testing.B) {
	cs := testcluster.Clientset(b)
	own := testcluster.Namespace(b, cs)
	app := appName(b)
	r := newRepo(b, webApp)
	d := startPauseDaemon(b, newConfig(b, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: bench.local}\n"), nil)
	env := d.waitPhase(app, "main", reconciler.PhaseReady, 60*time.Second)
	host := ""
	for _, spec := range readWorkloads(b, cs, env.Namespace).Ingress {
		host = spec.Rules[0].Host
	}
	lat := make([]time.Duration, 0, resumeSamples)
	for range resumeSamples {
		setPaused(b, d.daemon, app, "main", true)
		waitPaused(b, d.daemon, app, "main", "api")
		start := time.Now()
		if code, body := d.request(host); code != http.StatusServiceUnavailable {
			b.Fatalf("wake request: %d %s", code, body)
		}
		waitPhaseInMemory(b, d.daemon, app, "main", reconciler.PhaseReady)
		lat = append(lat, time.Since(start))
	}
	report(b, "request to Ready", lat)
	b.ReportMetric(pausedRequestsPerHour(b, 3), "requests/paused-env/hour")
}

func waitPhaseInMemory(b testing.TB, d *daemon, app, branch, phase string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range d.rec.Environments(app) {
			if e.Branch == branch && e.Phase == phase {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("%s@%s not %s", app, branch, phase)
}

// TestPausedEnvironmentsCostNoRequests: paused environments under a
// schedule and idle_after cost the daemon no API request while nothing
// happens, over an hour of the injected clock in which its pause loop looks
// at them every minute.
func TestPausedEnvironmentsCostNoRequests(t *testing.T) {
	if got := pausedRequestsPerHour(t, 3); got != 0 {
		t.Errorf("paused environments cost %.2f API requests each per hour while nothing happens, want 0", got)
	}
}

// pausedRequestsPerHour starts n environments paused by their schedule
// (created in its off hours, 20:00 on a Monday), lets the daemon settle,
// then steps an injected clock through an hour, minute by minute, each
// step once the daemon's pause loop waits on the clock, and returns the
// daemon's API requests in that hour per environment. The count is read
// from arbor_api_requests_total (every request the daemon's client sends):
// no reading fails the test.
func pausedRequestsPerHour(tb testing.TB, n int) float64 {
	cs := testcluster.Clientset(tb)
	own := testcluster.Namespace(tb, cs)
	app := appName(tb)
	r := newRepo(tb, webApp)
	for i := range n - 1 {
		r.on(fmt.Sprintf("b%d", i))
		r.commit("b", map[string]string{"f.txt": fmt.Sprint(i)})
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC))
	d := startPauseDaemon(tb, newConfig(tb, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\n"+
		"  pause:\n    schedule: {days: weekdays, hours: \"08:00-19:00\"}\n    idle_after: 4h\n"+
		"defaults: {domain: bench.local}\n"), clk)
	eventually(tb, 90*time.Second, fmt.Sprintf("%d environments paused", n), func() bool {
		paused := 0
		for _, e := range d.environments(app) {
			if e.Phase == reconciler.PhasePaused {
				paused++
			}
		}
		return paused == n
	})
	requests := func() float64 { return mustCounter(tb, d.reg, "arbor_api_requests_total", nil) }
	// settled: no request for two seconds (the fingerprints' adoption
	// writes each record once after its deploy)
	last, quiet := requests(), time.Now()
	eventually(tb, 60*time.Second, "the daemon settled", func() bool {
		if now := requests(); now != last {
			last, quiet = now, time.Now()
		}
		return time.Since(quiet) > 2*time.Second
	})
	before := requests()
	for range 60 {
		step(tb, clk, time.Minute)
	}
	eventually(tb, 30*time.Second, "the pause loop's last look", clk.HasWaiters)
	time.Sleep(500 * time.Millisecond) // any reconcile it queued runs
	extra := requests() - before
	for _, e := range d.environments(app) {
		if e.Phase != reconciler.PhasePaused {
			tb.Fatalf("%s@%s is %s after the quiet hour, want Paused", app, e.Branch, e.Phase)
		}
	}
	return extra / float64(n)
}
