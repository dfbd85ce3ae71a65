package reconciler_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// A new environment's rollout is waited for from the daemon's own watch of
// Deployments: bringing three environments up opens no watch of its own
// (the engine's wait would list and watch each Deployment), and each is
// Ready only once its Deployment is available on the cluster.
func TestRolloutsWaitedFromTheWatch(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	d := startDaemon(t, newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1s\n"))
	d.waitPhase(app, "main", reconciler.PhaseReady, 90*time.Second)
	isWatch := func(l map[string]string) bool { return l["verb"] == "watch" }
	// The informers' watches are open by now; a reading that is missing
	// would be 0 on both sides and pass, so it must exist.
	watches0 := mustCounter(t, d.reg, "arbor_api_requests_total", isWatch)
	for _, b := range []string{"a", "b", "c"} {
		r.on(b)
		r.commit(b, nil)
	}
	for _, b := range []string{"a", "b", "c"} {
		st := d.waitPhase(app, b, reconciler.PhaseReady, 90*time.Second)
		dep, err := cs.AppsV1().Deployments(st.Namespace).Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if dep.Status.AvailableReplicas != *dep.Spec.Replicas || dep.Status.ObservedGeneration < dep.Generation {
			t.Errorf("%s Ready while its Deployment is not rolled out: %+v", b, dep.Status)
		}
	}
	if w := mustCounter(t, d.reg, "arbor_api_requests_total", isWatch) - watches0; w != 0 {
		t.Errorf("bringing three environments up opened %v watches, want 0 (the rollouts come from the informer)", w)
	}
}
