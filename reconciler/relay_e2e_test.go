package reconciler_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/forgetest"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// TestWebhookToStandbyReachesLeader: two replicas of arbor, an app on the
// real Gitea polled once an hour, and Gitea's push webhook pointed at the
// standby. A push makes the leader act at once: the standby passes the
// delivery on through the leader Lease.
func TestWebhookToStandbyReachesLeader(t *testing.T) {
	f := forgetest.Gitea(t)
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	repo := f.CreateRepo(t, "arbor-relay")
	r := newRepo(t, webApp)
	f.Push(t, r.dir, repo, "main")
	secret := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(secret, []byte("relay-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := "apps:\n- name: " + app + "\n  repo: " + repo.CloneURL + "\n  poll_interval: 1h\nnamespace: " + own + "\n"
	server := "webhook_secret_file: " + secret
	leader, standby := leaderOf(t, app, startProcessServer(t, "replica-a", body, server), startProcessServer(t, "replica-b", body, server))
	eventually(t, 60*time.Second, "main ready", func() bool { return readyCount(leader.environments(app)) == 1 })

	r.on("feature/hook")
	c := r.commit("hook", nil)
	f.Push(t, r.dir, repo, "feature/hook")
	time.Sleep(2 * time.Second)
	for _, e := range leader.environments(app) {
		if e.Branch == "feature/hook" {
			t.Fatalf("the leader saw the push before any webhook (poll interval 1h): %+v; the check below could not fail", e)
		}
	}
	f.AddWebhook(t, repo, standby.url+"/hooks/gitea", "relay-secret", "push")
	c = r.commit("hook again", map[string]string{"x.txt": "1"})
	f.Push(t, r.dir, repo, "feature/hook")
	eventually(t, 30*time.Second, "feature/hook ready after Gitea's webhook to the standby", func() bool {
		for _, e := range leader.environments(app) {
			if e.Branch == "feature/hook" && e.Phase == reconciler.PhaseReady && e.Commit == c {
				return true
			}
		}
		return false
	})
}
