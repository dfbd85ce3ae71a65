package reconciler_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/buildkittest"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// Two replicas (binaries) in external image mode: the status API asked of
// the replica that does not own an app gives the owner's answer (the owner
// names itself in X-Arbor-Served-By, and the caller's request reached it
// once; an action passed on is authenticated by the owner), and the registry's notification of CI's push, delivered to that
// replica, reaches the owner through its Lease and rolls the image out at
// once (the registry is polled once a minute: longer than the test waits).
func TestShardedNonOwnerForwardsStatusAndRelaysRegistry(t *testing.T) {
	rl := newRelay(t)
	token := "notify-" + randHex(8)
	reg := buildkittest.StartRegistry(t, buildkittest.RegistryConfig{NotifyURL: rl.URL + "/hooks/registry", NotifyToken: token})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	apps := make([]string, 4)
	commits := map[string]string{}
	var body strings.Builder
	body.WriteString("apps:\n")
	for i := range apps {
		apps[i] = appName(t)
		r := newRepo(t, ciBuilt)
		commits[apps[i]] = r.commit("head", nil)
		fmt.Fprintf(&body, "- {name: %s, repo: %s, poll_interval: 1h}\n", apps[i], r.dir)
	}
	fmt.Fprintf(&body, "namespace: %s\ndefaults: {domain: test.local}\n", own)
	fmt.Fprintf(&body, "images: {build: external, registry: %s/ci, plain_http: true, poll_interval: 1m, max_poll_interval: 1m, wait_timeout: 10m, notification_token_file: %s}\n", reg, tokenFile)
	replicas := map[string]*process{}
	for _, name := range []string{"replica-a", "replica-b"} {
		replicas[name] = startProcess(t, name, body.String())
	}
	owners := map[string]string{}
	eventually(t, 120*time.Second, "one owner per app, agreed by every replica", func() bool {
		return agreedOwners(t, replicas, apps, owners)
	})
	app := apps[0]
	owner := owners[app]
	other := "replica-a"
	if owner == other {
		other = "replica-b"
	}

	// The status of app, asked of the other replica, is the owner's.
	resp, err := http.Get(replicas[other].url + "/api/v1/apps/" + app + "/environments")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get(reconciler.ServedByHeader); resp.StatusCode != http.StatusOK || got != owner {
		t.Fatalf("GET %s's environments from %s: %s, served by %q; want 200 from the owner %s (%s)", app, other, resp.Status, got, owner, resp.Header.Get(reconciler.OwnerUnreachableHeader))
	}

	// An action passed on is still authenticated, by the owner: a bogus
	// token is refused there.
	req, err := http.NewRequest(http.MethodPost, replicas[other].url+"/api/v1/apps/"+app+"/environments/main/deploy", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer not-a-token")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get(reconciler.ServedByHeader); resp.StatusCode != http.StatusUnauthorized || got != owner {
		t.Fatalf("POST deploy with a bogus token to %s: %s, served by %q; want 401 from the owner %s", other, resp.Status, got, owner)
	}

	// The registry notifies the other replica of CI's push: the owner's
	// wait ends at once.
	rl.to(t, replicas[other].url)
	ref := reg + "/ci/" + app + "/web:" + commits[app]
	eventually(t, 60*time.Second, app+" waiting for its image", func() bool {
		for _, e := range replicas[other].environments(app) {
			if e.Branch == "main" && e.Phase == reconciler.PhaseWaiting && e.Message == "Waiting for image "+ref {
				return true
			}
		}
		return false
	})
	pinned := reg + "/ci/" + app + "/web@" + pushRandom(t, ref)
	eventually(t, 30*time.Second, app+" Ready with CI's image, woken by the notification sent to "+other, func() bool {
		for _, e := range replicas[owner].environments(app) {
			if e.Branch == "main" && e.Phase == reconciler.PhaseReady && e.Commit == commits[app] {
				return deploymentImages(t, e.Namespace)["web"] == pinned
			}
		}
		return false
	})
}
