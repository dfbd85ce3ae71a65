package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/diagnose"
	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/state"
)

// The daemon config's ResourceQuota and LimitRange are in the environment
// before its workloads: the quota (limits.memory) would refuse a pod
// without a memory limit, and the pod gets the LimitRange's default. An
// app's own resource_quota replaces the default one.
func TestCostGuardsQuotaAndLimitRange(t *testing.T) {
	app := appName(t)
	r := newRepo(t, webApp)
	cfg := newConfig(t, "arbor-"+app, fmt.Sprintf(`defaults:
  resource_quota: {pods: "10", limits.memory: 4Gi}
  limit_range:
    default: {memory: 128Mi, cpu: 200m}
    default_request: {memory: 64Mi, cpu: 100m}
apps:
- name: %s
  repo: %s
  poll_interval: 1h
  resource_quota: {pods: "3", limits.memory: 1Gi}
`, app, r.dir))
	d := startDaemon(t, cfg)
	env := d.waitReadyAt(app, "main", git(t, r.dir, "rev-parse", "HEAD"), 90*time.Second)
	ctx := context.Background()

	q, err := d.cs.CoreV1().ResourceQuotas(env.Namespace).Get(ctx, reconciler.QuotaName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pods, mem := q.Spec.Hard["pods"], q.Spec.Hard["limits.memory"]; pods.String() != "3" || mem.String() != "1Gi" || len(q.Spec.Hard) != 2 {
		t.Errorf("quota %v: want the app's own (pods 3, limits.memory 1Gi)", q.Spec.Hard)
	}
	if q.Labels["app.kubernetes.io/managed-by"] != "arbor" || q.Labels["arbor.dev/app"] != app {
		t.Errorf("quota labels %v: not arbor's", q.Labels)
	}
	lr, err := d.cs.CoreV1().LimitRanges(env.Namespace).Get(ctx, reconciler.LimitRangeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lr.Spec.Limits) != 1 || lr.Spec.Limits[0].Default.Memory().String() != "128Mi" || lr.Spec.Limits[0].DefaultRequest.Cpu().String() != "100m" {
		t.Errorf("limit range %+v", lr.Spec.Limits)
	}
	pods, err := d.cs.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "arbor.dev/service=web"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("web's pods: %v (%d)", err, len(pods.Items))
	}
	if l := pods.Items[0].Spec.Containers[0].Resources.Limits.Memory().String(); l != "128Mi" {
		t.Errorf("web's memory limit %s, want the LimitRange's default 128Mi", l)
	}
	// Both are objects of the environment: in its inventory, pruned and deleted with it.
	inv := map[string]bool{}
	rec, err := state.Read(ctx, d.cs, env.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range rec.Inventory {
		inv[ref.Kind+"/"+ref.Name] = true
	}
	if !inv["ResourceQuota/"+reconciler.QuotaName] || !inv["LimitRange/"+reconciler.LimitRangeName] {
		t.Errorf("inventory %v lacks the cost guards", inv)
	}

	// A branch asking for more pods than the quota allows: the pods the
	// quota refuses never exist, and status says so, quoting the API server.
	r.on("feature/big")
	r.commit("five replicas", map[string]string{".release.yaml": webApp + "  replicas: 5\n"})
	var quota *diagnose.Problem
	eventually(t, 60*time.Second, "feature/big's QuotaExceeded", func() bool {
		e := d.env(app, "feature/big")
		if e == nil {
			return false
		}
		for _, p := range e.Problems {
			if p.Reason == diagnose.QuotaExceeded && p.Kind == diagnose.KindService && p.Name == "web" {
				quota = &p
				return true
			}
		}
		return false
	})
	if !strings.Contains(quota.Message, "exceeded quota: "+reconciler.QuotaName) {
		t.Errorf("quota problem: %+v", quota)
	}
}

// max_environments: 2. main and the branch with the older commit are
// deployed; the newer branch waits with that reason in status and in
// arbor_environment_problems, and nothing is deleted for it. When the
// older branch goes away, the waiting one is deployed: a branch with an
// invalid configuration, older still, takes no slot and no place before it.
func TestMaxEnvironmentsWaitsThenStarts(t *testing.T) {
	app := appName(t)
	r := newRepo(t, webApp)
	r.on("feature/broken")
	r.commit("broken", map[string]string{".release.yaml": "services:\n- name: web\n  image: [nginx\n"})
	r.commitAt("still broken", time.Now().Add(-72*time.Hour))
	r.on("feature/old")
	oldCommit := r.commitAt("old", time.Now().Add(-48*time.Hour))
	r.on("feature/new")
	newCommit := r.commitAt("new", time.Now().Add(-24*time.Hour))
	git(t, r.dir, "checkout", "-q", "main")
	cfg := newConfig(t, "arbor-"+app, fmt.Sprintf(`apps:
- name: %s
  repo: %s
  poll_interval: 1h
  max_environments: 2
`, app, r.dir))
	d := startDaemon(t, cfg)
	d.waitReadyAt(app, "main", git(t, r.dir, "rev-parse", "main"), 90*time.Second)
	old := d.waitReadyAt(app, "feature/old", oldCommit, 90*time.Second)

	waiting := d.waitPhase(app, "feature/new", reconciler.PhaseWaiting, 30*time.Second)
	if waiting.Namespace != "" || len(waiting.Problems) != 1 || waiting.Problems[0].Reason != diagnose.WaitingForSlot {
		t.Errorf("waiting branch: %+v", waiting)
	}
	t.Logf("waiting: %s", waiting.Problems[0].Message)
	resp, err := http.Get(d.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := mustCounter(t, d.reg, "arbor_environment_problems", func(l map[string]string) bool {
		return l["app"] == app && l["reason"] == string(diagnose.WaitingForSlot)
	}); v != 1 {
		t.Errorf("arbor_environment_problems{reason=WaitingForSlot} = %v, want 1", v)
	}
	// Still waiting a moment later, with both running environments kept.
	time.Sleep(2 * time.Second)
	if e := d.env(app, "feature/new"); e == nil || e.Phase != reconciler.PhaseWaiting {
		t.Fatalf("feature/new left Waiting while the cap is full: %+v", e)
	}
	if e := d.env(app, "feature/old"); e == nil || e.Phase != reconciler.PhaseReady || namespaceGone(d.cs, old.Namespace) {
		t.Fatalf("feature/old disturbed by the waiting branch: %+v", e)
	}

	if e := d.env(app, "feature/broken"); e == nil || e.Phase != reconciler.PhaseInvalid {
		t.Errorf("feature/broken: %+v, want Invalid", e)
	}

	r.deleteBranch("feature/old")
	d.waitReadyAt(app, "feature/new", newCommit, 90*time.Second)
	eventually(t, 60*time.Second, "feature/old's namespace gone", func() bool { return namespaceGone(d.cs, old.Namespace) })
	if e := d.env(app, "main"); e == nil || e.Phase != reconciler.PhaseReady {
		t.Errorf("main: %+v", e)
	}
}

// commitAt commits on the current branch with the given committer date.
func (r *repo) commitAt(msg string, when time.Time) string {
	r.tb.Helper()
	cmd := gitCmd(r.dir, "commit", "-q", "--allow-empty", "-m", msg)
	date := when.UTC().Format(time.RFC3339)
	cmd.Env = append(cmd.Env, "GIT_COMMITTER_DATE="+date, "GIT_AUTHOR_DATE="+date)
	if out, err := cmd.CombinedOutput(); err != nil {
		r.tb.Fatalf("git commit: %v: %s", err, out)
	}
	return git(r.tb, r.dir, "rev-parse", "HEAD")
}
