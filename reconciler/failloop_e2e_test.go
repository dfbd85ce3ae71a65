package reconciler_test

import (
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// TestBuildErrorBacksOff: a deployed environment whose new commit cannot be
// built (it imports an app the daemon does not have) is recorded Failed
// once and retried with backoff — not rewritten, and so requeued by its
// own record's watch event, in a loop (it was: ~120 record writes a second).
func TestBuildErrorBacksOff(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\n")
	d := startDaemon(t, cfg)
	d.waitPhase(app, "main", reconciler.PhaseReady, 90*time.Second)
	r.commit("import an app that is not there", map[string]string{".release.yaml": webApp + "app_imports:\n- name: nosuchapp\n"})
	d.waitPhase(app, "main", reconciler.PhaseFailed, 60*time.Second)
	writes := func() float64 {
		return mustCounter(t, d.reg, "arbor_api_requests_total", func(l map[string]string) bool { return l["verb"] == "apply" })
	}
	failures := func() float64 {
		return mustCounter(t, d.reg, "arbor_reconcile_duration_seconds", func(l map[string]string) bool { return l["result"] == "error" })
	}
	eventually(t, 30*time.Second, "the failed reconcile counted", func() bool {
		_, found := gather(t, d.reg, "arbor_reconcile_duration_seconds", func(l map[string]string) bool { return l["result"] == "error" })
		return found
	})
	w0, f0 := writes(), failures()
	time.Sleep(5 * time.Second)
	w, f := writes()-w0, failures()-f0
	t.Logf("in 5s of a failing build: %v record writes, %v failed reconciles", w, f)
	// backoff from 5ms doubling to the harness's 2s: about a dozen retries in 5s
	if w > 2 || f > 20 {
		t.Errorf("in 5s of a failing build: %v writes, %v failed reconciles; want the failure recorded once and retried with backoff", w, f)
	}
}
