package reconciler_test

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// TestWebhookToStandbyReachesLeader: two replicas of arbor, an app polled
// once an hour. A webhook delivered to the standby makes the leader act at
// once: the standby passes it on through the leader Lease.
func TestWebhookToStandbyReachesLeader(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	srv := newGitServer(t)
	r := newRepo(t, webApp)
	url := srv.serve(r, app)
	dir := t.TempDir()
	for name, v := range map[string]string{"user": srv.user, "pass": srv.pass, "hook": "relay-secret"} {
		if err := os.WriteFile(dir+"/"+name, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	body := "apps:\n- name: " + app + "\n  repo: " + url + "\n  poll_interval: 1h\n  auth: {username_file: " + dir + "/user, password_file: " + dir + "/pass}\nnamespace: " + own + "\n"
	server := "webhook_secret_file: " + dir + "/hook"
	leader, standby := leaderOf(t, startProcessServer(t, "replica-a", body, server), startProcessServer(t, "replica-b", body, server))
	eventually(t, 60*time.Second, "main ready", func() bool { return readyCount(leader.environments(app)) == 1 })

	r.on("feature/hook")
	c := r.commit("hook", nil)
	r.push("feature/hook")
	time.Sleep(2 * time.Second)
	for _, e := range leader.environments(app) {
		if e.Branch == "feature/hook" {
			t.Fatalf("the leader saw the push before any webhook (poll interval 1h): %+v; the check below could not fail", e)
		}
	}
	hook := `{"ref":"refs/heads/feature/hook","repository":{"clone_url":"` + url + `"}}`
	if code := postHookTB(t, standby.url+"/hooks/github", hook, sign("relay-secret", hook)); code != http.StatusAccepted {
		t.Fatalf("webhook to the standby: %d", code)
	}
	eventually(t, 30*time.Second, "feature/hook ready after a webhook to the standby", func() bool {
		for _, e := range leader.environments(app) {
			if e.Branch == "feature/hook" && e.Phase == reconciler.PhaseReady && e.Commit == c {
				return true
			}
		}
		return false
	})
}
