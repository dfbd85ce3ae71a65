package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, method string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/", nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func fixedOpts() Options { return Options{Now: func() time.Time { return testNow }} }

func TestPageShowsEnvironments(t *testing.T) {
	res, body := get(t, Handler(fixtureSource(), fixedOpts()), http.MethodGet)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="10">`,
		"feature/checkout-v2", "shop-feature-checkout-v2-1a2b3c",
		`title="9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c">9b8c7d6<`, // short commit, full on hover
		`<span class="phase busy">Progressing</span>`,
		`<span class="phase bad">Failed</span><span class="since">for 5m</span>`,
		"setup 1/3", "migrate", `style="width:33%"`,
		`href="https://web-shop-main.preview.example.com"`,
		`https://grafana.example.com/d/shop?var-ns=shop-main`,
		`<code>.release/application_template.yaml:14:7</code>: services[1].ports[0].port: 70000 is not a port (1-65535)`,
		`class="err warning"`,
		"listing branches: dial tcp 10.0.0.7:443",
		">web-shop-main.preview.example.com</a>",
		`<td class="when">2d 2h</td>`, `<td class="when">1m 30s</td>`, // ages
		"in 3d", `class="when expired">expired`, "never",
		"arbor-7d9c5-x2x8q",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestPageNeverShowsURLCredentials(t *testing.T) {
	_, body := get(t, Handler(fixtureSource(), fixedOpts()), http.MethodGet)
	if strings.Contains(body, "s3cr3t-t0ken") || strings.Contains(body, "deploy-bot") {
		t.Fatal("the page shows the credentials embedded in the repository URL")
	}
	if !strings.Contains(body, "https://git.example.com/acme/shop.git") {
		t.Error("the page lacks the repository URL without its credentials")
	}
}

func TestPageHeadersForbidExternalAssets(t *testing.T) {
	res, body := get(t, Handler(fixtureSource(), fixedOpts()), http.MethodGet)
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q does not forbid external assets", csp)
	}
	for _, bad := range []string{"<script", "<link", "src=\"http", "@import", "url("} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q: it must need no external asset and no script", bad)
		}
	}
}

func TestPageEscapesHostileInput(t *testing.T) {
	snap := Snapshot{Leader: true, Apps: []App{{Name: "x", Environments: []Environment{{
		Branch:   `<script>alert(1)</script>`,
		Links:    []Link{{Name: "evil", URL: "javascript:alert(1)"}},
		Problems: []Problem{{Where: "a.yaml:1", Message: `<img src=x onerror=alert(1)>`}},
	}}}}}
	_, body := get(t, Handler(SourceFunc(func(context.Context) (Snapshot, error) { return snap, nil }), fixedOpts()), http.MethodGet)
	for _, bad := range []string{"<script>alert", "<img src=x", `href="javascript:`} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
}

// A diagnosed problem shows its message and the container's last log
// lines, escaped: a log line is a branch's output.
func TestPageShowsProblemLogLinesEscaped(t *testing.T) {
	snap := Snapshot{Leader: true, Apps: []App{{Name: "x", Environments: []Environment{{
		Branch: "main",
		Problems: []Problem{{Where: "service web", Message: "CrashLoopBackOff: container web keeps exiting with code 3",
			Logs: []string{"panic: no DATABASE_URL", `<script>alert(1)</script>`}}},
	}}}}}
	_, body := get(t, Handler(SourceFunc(func(context.Context) (Snapshot, error) { return snap, nil }), fixedOpts()), http.MethodGet)
	for _, want := range []string{"<code>service web</code>: CrashLoopBackOff: container web keeps exiting with code 3", "last log lines", "panic: no DATABASE_URL\n", "&lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>alert") {
		t.Error("a log line reached the page unescaped")
	}
}

func TestPageSourceErrorIsUnavailable(t *testing.T) {
	src := SourceFunc(func(context.Context) (Snapshot, error) { return Snapshot{}, errors.New("status cache not synced yet") })
	res, body := get(t, Handler(src, fixedOpts()), http.MethodGet)
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", res.StatusCode)
	}
	if !strings.Contains(body, "Status is unavailable: status cache not synced yet") {
		t.Error("page does not say why status is unavailable")
	}
}

func TestPageExpiresAfterWithoutDeadline(t *testing.T) {
	src := SourceFunc(func(context.Context) (Snapshot, error) {
		return Snapshot{Leader: true, Apps: []App{{Name: "a", Environments: []Environment{{Branch: "b", ExpiresAfter: "72h"}}}}}, nil
	})
	_, body := get(t, Handler(src, fixedOpts()), http.MethodGet)
	if !strings.Contains(body, "72h after the last push") {
		t.Error("page does not show expires_after when the deadline is unknown")
	}
}

func TestPageEmptyAndStandby(t *testing.T) {
	src := SourceFunc(func(context.Context) (Snapshot, error) {
		return Snapshot{Apps: []App{{Name: "empty-app"}}}, nil
	})
	_, body := get(t, Handler(src, fixedOpts()), http.MethodGet)
	for _, want := range []string{"No environments yet.", "on standby"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	_, body = get(t, Handler(SourceFunc(func(context.Context) (Snapshot, error) { return Snapshot{Leader: true}, nil }), fixedOpts()), http.MethodGet)
	if !strings.Contains(body, "No apps are configured") {
		t.Error("page with no apps does not say so")
	}
}

func TestPageMethods(t *testing.T) {
	h := Handler(fixtureSource(), fixedOpts())
	if res, body := get(t, h, http.MethodHead); res.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD: status %d, %d bytes of body", res.StatusCode, len(body))
	}
	if res, _ := get(t, h, http.MethodPost); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", res.StatusCode)
	}
}

// TestPageHidesRepositoryUserinfo checks the page's output: no form of a
// repository address shows its userinfo (internal/redact owns the rule).
func TestPageHidesRepositoryUserinfo(t *testing.T) {
	for _, repo := range []string{
		"https://ghp_PAGETOKEN1@git.example.com/a/b.git",
		"https://bob:PAGESECRET2@git.example.com/a/b.git",
		"ssh://PAGEUSER3@git.example.com/a/b.git",
		"PAGEUSER4@git.example.com:a/b.git",
	} {
		snap := fixture()
		snap.Apps[0].Repo = repo
		src := SourceFunc(func(context.Context) (Snapshot, error) { return snap, nil })
		_, body := get(t, Handler(src, fixedOpts()), http.MethodGet)
		for _, secret := range []string{"PAGETOKEN1", "PAGESECRET2", "PAGEUSER3", "PAGEUSER4"} {
			if strings.Contains(body, secret) {
				t.Errorf("repo %s: the page shows %s", repo, secret)
			}
		}
		if !strings.Contains(body, "git.example.com") {
			t.Errorf("repo %s: the page does not show the host at all", repo)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 40 * time.Second: "40s", 90 * time.Second: "1m 30s", time.Hour: "1h",
		26*time.Hour + 5*time.Minute: "1d 2h", 72 * time.Hour: "3d",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
