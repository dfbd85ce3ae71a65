package gitsource

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const hookSecret = "webhook-secret-42"

func sign(body string) string {
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

// hookFixture is a receiver routing to two remote Sources and one local one.
type hookFixture struct {
	hooks             *Webhooks
	shop, blog, local *Source
	mu                sync.Mutex
	results           []string
}

func newHookFixture(t *testing.T) *hookFixture {
	t.Helper()
	f := &hookFixture{}
	open := func(app, repo string) *Source {
		var auth Auth
		if strings.HasPrefix(repo, "ssh://") { // files are read only when listing
			auth = Auth{SSHKeyFile: "/unused/id_ed25519", KnownHostsFile: "/unused/known_hosts"}
		}
		src, err := Open(Options{App: app, Repo: repo, CacheDir: t.TempDir(), Auth: auth})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	f.shop = open("shop", "https://git.example.com/acme/shop.git")
	f.blog = open("blog", "ssh://git@git.example.com:2222/acme/blog.git")
	f.local = open("notes", newWorkRepo(t).dir)
	f.hooks = NewWebhooks(WebhookOptions{
		Secret:       []byte(hookSecret),
		MaxBodyBytes: 4096,
		Metrics:      NewMetrics(),
		OnDelivery: func(provider, result string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.results = append(f.results, provider+"/"+result)
		},
	})
	f.hooks.SetSources([]*Source{f.shop, f.blog, f.local})
	return f
}

func (f *hookFixture) post(t *testing.T, path, body string, hdr map[string]string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.hooks.ServeHTTP(rec, req)
	return rec.Code
}

// fired reports which Sources have a pending trigger, taking them.
func (f *hookFixture) fired() []string {
	var out []string
	for _, s := range []*Source{f.shop, f.blog, f.local} {
		select {
		case <-s.Trigger().C():
			out = append(out, s.App())
		default:
		}
	}
	return out
}

func (f *hookFixture) lastResult() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.results) == 0 {
		return ""
	}
	return f.results[len(f.results)-1]
}

const (
	githubPush = `{"ref":"refs/heads/main","repository":{"full_name":"acme/shop","clone_url":"https://git.example.com/acme/shop.git","ssh_url":"git@git.example.com:acme/shop.git","html_url":"https://git.example.com/acme/shop"}}`
	giteaPush  = `{"ref":"refs/heads/main","repository":{"full_name":"acme/blog","clone_url":"https://git.example.com/acme/blog.git","ssh_url":"ssh://git@git.example.com:2222/acme/blog.git"}}`
	gitlabPush = `{"object_kind":"push","project":{"path_with_namespace":"acme/shop","git_http_url":"https://git.example.com/acme/shop.git","git_ssh_url":"git@git.example.com:acme/shop.git"},"repository":{"git_http_url":"https://git.example.com/acme/shop.git"}}`
)

func TestWebhookProviders(t *testing.T) {
	cases := []struct {
		name, path, body string
		good, bad        map[string]string
		want             string
	}{
		{"github", "/hooks/github", githubPush,
			map[string]string{"X-Hub-Signature-256": "sha256=" + sign(githubPush)},
			map[string]string{"X-Hub-Signature-256": "sha256=" + sign(githubPush+" ")}, "shop"},
		{"gitea", "/hooks/gitea", giteaPush,
			map[string]string{"X-Gitea-Signature": sign(giteaPush)},
			map[string]string{"X-Gitea-Signature": sign("{}")}, "blog"},
		{"gitea-hub-signature", "/hooks/gitea", giteaPush,
			map[string]string{"X-Hub-Signature-256": "sha256=" + sign(giteaPush)},
			map[string]string{"X-Hub-Signature-256": sign(giteaPush)}, "blog"}, // prefix missing
		{"gitlab", "/hooks/gitlab", gitlabPush,
			map[string]string{"X-Gitlab-Token": hookSecret},
			map[string]string{"X-Gitlab-Token": hookSecret + "x"}, "shop"},
		{"generic-hmac", "/hooks/generic", `{"repository":"git@git.example.com:acme/shop.git"}`,
			map[string]string{"X-Arbor-Signature-256": "sha256=" + sign(`{"repository":"git@git.example.com:acme/shop.git"}`)},
			map[string]string{"X-Arbor-Signature-256": "sha256=00"}, "shop"},
		{"generic-bearer-app", "/hooks/generic?app=notes", "",
			map[string]string{"Authorization": "Bearer " + hookSecret},
			map[string]string{"Authorization": "Bearer nope"}, "notes"},
		{"generic-body-app", "/hooks/generic", `{"app":"blog"}`,
			map[string]string{"Authorization": "Bearer " + hookSecret},
			map[string]string{"Authorization": hookSecret}, "blog"}, // no "Bearer "
		{"github-query-app", "/hooks/github?app=blog", githubPush,
			map[string]string{"X-Hub-Signature-256": "sha256=" + sign(githubPush)},
			map[string]string{}, "blog"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newHookFixture(t)
			if code := f.post(t, c.path, c.body, c.bad); code != http.StatusUnauthorized {
				t.Errorf("bad signature: status %d, want 401", code)
			}
			if got := f.fired(); len(got) != 0 {
				t.Errorf("bad signature fired %v", got)
			}
			if code := f.post(t, c.path, c.body, nil); code != http.StatusUnauthorized {
				t.Errorf("no signature: status %d, want 401", code)
			}
			if got := f.fired(); len(got) != 0 {
				t.Errorf("missing signature fired %v", got)
			}
			if code := f.post(t, c.path, c.body, c.good); code != http.StatusAccepted {
				t.Errorf("valid signature: status %d, want 202", code)
			}
			if got := f.fired(); len(got) != 1 || got[0] != c.want {
				t.Errorf("valid signature fired %v, want [%s]", got, c.want)
			}
			provider := strings.TrimPrefix(strings.SplitN(c.path, "?", 2)[0], "/hooks/")
			if got := f.lastResult(); got != provider+"/"+ResultTriggered {
				t.Errorf("reported %q", got)
			}
		})
	}
}

func TestWebhookFormContentType(t *testing.T) {
	f := newHookFixture(t)
	body := url.Values{"payload": {githubPush}}.Encode()
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Hub-Signature-256", "sha256="+sign(body)) // over the raw form body
	rec := httptest.NewRecorder()
	f.hooks.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("form delivery: status %d (%s), want 202", rec.Code, rec.Body)
	}
	if got := f.fired(); fmt.Sprint(got) != "[shop]" {
		t.Fatalf("form delivery fired %v", got)
	}
}

func TestWebhookRejections(t *testing.T) {
	f := newHookFixture(t)
	unknown := `{"repository":{"full_name":"other/repo","clone_url":"https://elsewhere.example/other/repo.git"}}`
	if code := f.post(t, "/hooks/github", unknown, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(unknown)}); code != http.StatusNotFound {
		t.Errorf("unknown repository: status %d, want 404", code)
	}
	if f.lastResult() != "github/"+ResultNoMatch {
		t.Errorf("unknown repository reported %q", f.lastResult())
	}
	big := `{"pad":"` + strings.Repeat("x", 5000) + `"}`
	if code := f.post(t, "/hooks/github", big, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(big)}); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", code)
	}
	if code := f.post(t, "/hooks/github", "not json", map[string]string{"X-Hub-Signature-256": "sha256=" + sign("not json")}); code != http.StatusBadRequest {
		t.Errorf("signed garbage: status %d, want 400", code)
	}
	for _, odd := range []string{`[]`, `null`, `{"repository":5}`, `{"repository":"acme/shop"}`, `{"project":[]}`, `{"repository":{"clone_url":7}}`, "\x00"} {
		code := f.post(t, "/hooks/github", odd, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(odd)})
		if code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Errorf("signed %q: status %d, want 400 or 404", odd, code)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/hooks/github", nil)
	rec := httptest.NewRecorder()
	f.hooks.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", rec.Code)
	}
	if code := f.post(t, "/hooks/bitbucket", githubPush, nil); code != http.StatusNotFound {
		t.Errorf("unknown provider: status %d, want 404", code)
	}
	if got := f.fired(); len(got) != 0 {
		t.Errorf("rejected deliveries fired %v", got)
	}

	// No secret configured: everything is refused, even with a "valid"
	// signature over an empty key.
	open := NewWebhooks(WebhookOptions{ProviderSecrets: map[string][]byte{ProviderGitLab: []byte(hookSecret)}})
	open.SetSources([]*Source{f.shop})
	mac := hmac.New(sha256.New, nil)
	mac.Write([]byte(githubPush))
	req = httptest.NewRequest(http.MethodPost, "/hooks/github", strings.NewReader(githubPush))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	rec = httptest.NewRecorder()
	open.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("no secret configured: status %d, want 401", rec.Code)
	}
	if got := f.fired(); len(got) != 0 {
		t.Errorf("unconfigured provider fired %v", got)
	}
}

func TestWebhookDeliveryMetric(t *testing.T) {
	f := newHookFixture(t)
	f.post(t, "/hooks/github", githubPush, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(githubPush)})
	f.post(t, "/hooks/github", githubPush, map[string]string{"X-Hub-Signature-256": "sha256=00"})
	f.post(t, "/hooks/github", githubPush, nil)
	m := f.hooks.opts.Metrics
	for result, want := range map[string]float64{ResultTriggered: 1, ResultUnauthorized: 2} {
		c, err := m.deliveries.GetMetricWithLabelValues(ProviderGitHub, result)
		if err != nil {
			t.Fatal(err)
		}
		var got float64
		if got = counterValue(t, c); got != want {
			t.Errorf("deliveries{github,%s} = %v, want %v", result, got, want)
		}
	}
}

func TestWebhookCoalesces(t *testing.T) {
	f := newHookFixture(t)
	hdr := map[string]string{"X-Hub-Signature-256": "sha256=" + sign(githubPush)}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.post(t, "/hooks/github", githubPush, hdr)
		}()
	}
	wg.Wait()
	if got := f.fired(); fmt.Sprint(got) != "[shop]" {
		t.Fatalf("20 deliveries left pending %v, want exactly one for shop", got)
	}
	if got := f.fired(); len(got) != 0 {
		t.Fatalf("a second refresh was pending: %v", got)
	}
}

func TestTriggerCoalesces(t *testing.T) {
	tr := NewTrigger()
	// A refresh is "running": the loop took the first request.
	tr.Fire()
	<-tr.C()
	for range 100 {
		tr.Fire()
	}
	select {
	case <-tr.C():
	default:
		t.Fatal("no refresh pending after Fire during a refresh")
	}
	select {
	case <-tr.C():
		t.Fatal("more than one refresh pending")
	default:
	}
}

// counterValue reads a counter through a registry, as a scrape would.
func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestWebhookEndToEnd mounts the receiver on a real HTTP server, pushes to a
// repository served by git http-backend, delivers a signed GitHub push
// event, and follows the trigger to a listing that shows the push.
func TestWebhookEndToEnd(t *testing.T) {
	f := newRemoteFixture(t, Options{})
	ctx := testCtx(t)
	hooks := NewWebhooks(WebhookOptions{Secret: []byte(hookSecret)})
	hooks.SetSources([]*Source{f.src})
	mux := http.NewServeMux()
	mux.Handle("/hooks/", hooks)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	next := f.work.commitFile("dir/sub/file.txt", "pushed\n")
	f.work.git("push", "-q", "origin", "main")
	body := fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"full_name":"shop","clone_url":%q}}`, next, f.url)
	deliver := func(sig string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/hooks/github", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := deliver("sha256=" + sign(body+"tampered")); code != http.StatusUnauthorized {
		t.Fatalf("tampered delivery: %d, want 401", code)
	}
	select {
	case <-f.src.Triggers():
		t.Fatal("a delivery with a bad signature triggered a refresh")
	default:
	}
	if code := deliver("sha256=" + sign(body)); code != http.StatusAccepted {
		t.Fatalf("signed delivery: %d, want 202", code)
	}
	select {
	case <-f.src.Triggers():
	case <-ctx.Done():
		t.Fatal("no trigger after a signed delivery")
	}
	branches, _, err := f.src.ListBranches(ctx)
	if err != nil || branches["main"] != next {
		t.Fatalf("listing after the webhook: %v, %v; want main at %s", branches, err, next)
	}
}
