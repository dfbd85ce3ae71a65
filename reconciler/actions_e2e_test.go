package reconciler_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/workflow"
)

// TestActionsNeedAuthorization sends the deploy action without a token, with a
// token whose ServiceAccount lacks arbor's deploy verb, with a good token from
// another site, and with a good token; only the last is acted on, checked on
// the environment's namespace where a request is recorded.
func TestActionsNeedAuthorization(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, heldApp)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: test.local}\n")
	d := startDaemon(t, cfg)
	env := d.waitReadyAt(app, "main", git(t, r.dir, "rev-parse", "HEAD"), 90*time.Second)

	requested := func() string {
		ns, err := cs.CoreV1().Namespaces().Get(context.Background(), env.Namespace, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ns.Annotations[workflow.AnnotationDeployRequested]
	}
	url := d.srv.URL + "/api/v1/apps/" + app + "/environments/main/deploy"
	viewer := testcluster.ServiceAccountToken(t, cs, own, "viewer", "get", "list")
	deployer := testcluster.ServiceAccountToken(t, cs, own, "deployer-x", "deploy")
	for _, c := range []struct {
		name   string
		token  string
		header map[string]string
		want   int
	}{
		{"no token", "", nil, http.StatusUnauthorized},
		{"not a token", "not-a-token", nil, http.StatusUnauthorized},
		{"no deploy verb", viewer, nil, http.StatusForbidden},
		{"cross-site fetch", deployer, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"another origin", deployer, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"a form post", deployer, map[string]string{"Content-Type": "text/plain"}, http.StatusForbidden},
	} {
		code, body := postAction(t, url, c.token, c.header)
		if code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
		if got := requested(); got != "" {
			t.Fatalf("%s: a deploy was recorded (%s) by a refused request", c.name, got)
		}
	}
	if code, body := postAction(t, url, deployer, map[string]string{"Content-Type": "application/json"}); code != http.StatusAccepted {
		t.Fatalf("authorized deploy: %d %s", code, body)
	}
	if requested() == "" {
		t.Error("the authorized deploy request was not recorded")
	}
	if code, body := postAction(t, strings.Replace(url, "/main/", "/nope/", 1), deployer, nil); code != http.StatusForbidden && code != http.StatusNotFound {
		t.Errorf("deploy of another environment: %d %s", code, body)
	}
}
