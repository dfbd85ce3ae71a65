package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/arbordev/arbor/internal/testcluster"
)

// TestEachActionNeedsItsVerb runs every action against the real API
// server's TokenReview and SubjectAccessReview: a ServiceAccount whose Role
// lacks the action's verb gets 403 naming that verb, and the daemon is not
// asked; one that has it is served. Reads need list/get unless open.
func TestEachActionNeedsItsVerb(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	f := &fakeDaemon{}
	r := f.routes()
	r.Apps = func() any { return []string{"shop"} }
	r.Guard = (&Authorizer{Kube: cs, Namespace: ns}).Require
	srv := httptest.NewServer(New(r, Options{}))
	defer srv.Close()

	const env = "/api/v1/apps/shop/environments/main"
	actions := []struct {
		verb, method, path, body, call string
	}{
		{VerbPause, "POST", env + "/pause", "", "pause=true"},
		{VerbResume, "POST", env + "/resume", "", "pause=false"},
		{VerbExtend, "POST", env + "/extend", `{"duration":"2h"}`, "extend=2h0m0s"},
		{VerbDelete, "DELETE", env, "", "delete"},
		{VerbLogs, "GET", env + "/logs/services/web", "", "logs service/web tail=200"},
		{"list", "GET", "/api/v1/apps", "", ""},
		{"get", "GET", env, "", ""},
	}
	// one ServiceAccount with every verb, one with none of these
	var all []string
	for _, a := range actions {
		all = append(all, a.verb)
	}
	everything := testcluster.ServiceAccountToken(t, cs, ns, "operator", all...)
	nothing := testcluster.ServiceAccountToken(t, cs, ns, "deployer", VerbDeploy)
	for _, a := range actions {
		t.Run(a.verb, func(t *testing.T) {
			// only this action's verb missing
			others := testcluster.ServiceAccountToken(t, cs, ns, "without-"+a.verb, without(all, a.verb)...)
			for _, token := range []string{nothing, others} {
				f.calls = nil
				code, body := send(t, srv.URL, a.method, a.path, a.body, token)
				if code != http.StatusForbidden || !strings.Contains(body, "verbs ["+a.verb+"]") {
					t.Errorf("without %s: %d %s, want 403 naming the verb", a.verb, code, body)
				}
				if len(f.calls) > 0 {
					t.Errorf("without %s: the daemon was asked %v", a.verb, f.calls)
				}
			}
			f.calls = nil
			if code, body := send(t, srv.URL, a.method, a.path, a.body, ""); code != http.StatusUnauthorized {
				t.Errorf("no token: %d %s, want 401", code, body)
			}
			code, body := send(t, srv.URL, a.method, a.path, a.body, everything)
			if code/100 != 2 || strings.Join(f.calls, ",") != a.call {
				t.Errorf("with %s: %d %s, daemon asked %v, want %q", a.verb, code, body, f.calls, a.call)
			}
		})
	}
}

func without(verbs []string, v string) []string {
	var out []string
	for _, x := range verbs {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func send(t *testing.T, base, method, path, body, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := new(strings.Builder)
	_, _ = io.Copy(b, resp.Body)
	return resp.StatusCode, b.String()
}
