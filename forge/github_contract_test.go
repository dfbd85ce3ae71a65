package forge_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arbordev/arbor/forge"
)

// githubFake serves GitHub's REST API as GitHub Enterprise Server does, below
// /api/v3, for the repository acme/shop (docs.github.com/rest: pulls,
// commits/statuses, issues/comments, users).
func githubFake(t *testing.T) fakeFixture {
	f := newFakeForge(t)
	f.limitedStatus = http.StatusForbidden
	f.limitedBody = `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}`
	reset := time.Now().Add(time.Hour).Unix()
	rate := func(h http.Header) {
		h.Set("X-RateLimit-Limit", strconv.Itoa(f.limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(f.remaining))
		h.Set("X-RateLimit-Used", strconv.Itoa(f.limit-f.remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
		h.Set("X-RateLimit-Resource", "core")
	}
	srv := f.serve("/api/v3", func(w http.ResponseWriter, r *http.Request, path string) bool {
		if err := githubHeaders(r); err != nil {
			t.Errorf("contract: %s %s: %v", r.Method, path, err)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
			return true
		}
		return githubRoute(f, w, r, path, rate)
	})
	return fakeFixture{kind: forge.GitHub, fake: f, url: srv.URL, repo: "acme/shop", descMax: 140,
		stateFor: func(s forge.State) string { return string(s) }}
}

// githubHeaders checks what GitHub documents for every REST call.
func githubHeaders(r *http.Request) error {
	switch {
	case r.Header.Get("Authorization") != "Bearer "+fakeToken:
		return fmt.Errorf("Authorization %q, want Bearer and the token", r.Header.Get("Authorization"))
	case r.Header.Get("Accept") != "application/vnd.github+json":
		return fmt.Errorf("Accept %q, want application/vnd.github+json", r.Header.Get("Accept"))
	case r.Header.Get("X-GitHub-Api-Version") != "2022-11-28":
		return fmt.Errorf("X-GitHub-Api-Version %q, want 2022-11-28", r.Header.Get("X-GitHub-Api-Version"))
	case r.Header.Get("User-Agent") == "":
		return fmt.Errorf("no User-Agent (GitHub refuses requests without one)")
	}
	return nil
}

var (
	ghPulls        = regexp.MustCompile(`^/repos/acme/shop/pulls$`)
	ghStatuses     = regexp.MustCompile(`^/repos/acme/shop/statuses/([0-9a-f]{40})$`)
	ghIssueComment = regexp.MustCompile(`^/repos/acme/shop/issues/([0-9]+)/comments$`)
	ghComment      = regexp.MustCompile(`^/repos/acme/shop/issues/comments/([0-9]+)$`)
)

// githubRoute answers one request, or returns false when it is none GitHub
// documents (or one arbor has no business sending).
func githubRoute(f *fakeForge, w http.ResponseWriter, r *http.Request, path string, rate func(http.Header)) bool {
	fail := func(status int, err error) bool {
		f.t.Errorf("contract: %s %s: %v", r.Method, path, err)
		writeJSON(w, status, map[string]string{"message": err.Error()})
		return true
	}
	q := r.URL.Query()
	if r.Method != http.MethodGet {
		f.writes++
	}
	listing := r.Method == http.MethodGet && (ghPulls.MatchString(path) || ghIssueComment.MatchString(path))
	if !listing {
		// Listings spend in writeList, which knows about 304.
		if !f.spend() {
			f.limited(w, rate)
			return true
		}
		rate(w.Header())
	}
	switch m := (matcher{r.Method, path}); {
	case m.is(http.MethodGet, ghPulls):
		if err := onlyQuery(q, "state", "head", "base", "sort", "direction", "per_page", "page"); err != nil {
			return fail(http.StatusBadRequest, err)
		}
		if q.Get("state") != "open" {
			return fail(http.StatusBadRequest, fmt.Errorf("state=%q, want open", q.Get("state")))
		}
		var open []any
		for _, p := range f.prs {
			if !p.Closed {
				open = append(open, githubPR(p))
			}
		}
		from, to, pg, next, err := page(q, len(open), 30)
		if err != nil {
			return fail(http.StatusUnprocessableEntity, err)
		}
		f.writeList(w, r, open[from:to], next, pg, rate)
	case m.is(http.MethodPost, ghStatuses):
		b, err := f.jsonBody(r, []string{"state"}, []string{"target_url", "description", "context"})
		if err != nil {
			return fail(http.StatusUnprocessableEntity, err)
		}
		switch b["state"] {
		case "error", "failure", "pending", "success":
		default:
			return fail(http.StatusUnprocessableEntity, fmt.Errorf("state %q", b["state"]))
		}
		if n := len([]rune(b["description"])); n > 140 {
			return fail(http.StatusUnprocessableEntity, fmt.Errorf("description is too long (maximum is 140 characters): %d", n))
		}
		sha := ghStatuses.FindStringSubmatch(path)[1]
		f.statuses = append(f.statuses, fakeStatus{SHA: sha, Context: b["context"], State: b["state"], Description: b["description"], TargetURL: b["target_url"]})
		writeJSON(w, http.StatusCreated, map[string]any{"id": f.id(), "state": b["state"], "description": b["description"],
			"target_url": b["target_url"], "context": b["context"], "creator": map[string]any{"login": fakeUser}})
	case m.is(http.MethodGet, regexp.MustCompile(`^/user$`)):
		writeJSON(w, http.StatusOK, map[string]any{"login": fakeUser, "id": 1, "type": "User"})
	case m.is(http.MethodGet, ghIssueComment):
		if err := onlyQuery(q, "since", "per_page", "page"); err != nil {
			return fail(http.StatusBadRequest, err)
		}
		n, _ := strconv.ParseInt(ghIssueComment.FindStringSubmatch(path)[1], 10, 64)
		var list []any
		for _, c := range f.comments[n] {
			list = append(list, githubComment(c))
		}
		from, to, pg, next, err := page(q, len(list), 30)
		if err != nil {
			return fail(http.StatusUnprocessableEntity, err)
		}
		f.writeList(w, r, list[from:to], next, pg, rate)
	case m.is(http.MethodPost, ghIssueComment):
		b, err := f.jsonBody(r, []string{"body"}, nil)
		if err != nil {
			return fail(http.StatusUnprocessableEntity, err)
		}
		n, _ := strconv.ParseInt(ghIssueComment.FindStringSubmatch(path)[1], 10, 64)
		if f.pr(n) == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
			return true
		}
		c := &fakeComment{ID: f.id(), User: fakeUser, Body: b["body"]}
		f.comments[n] = append(f.comments[n], c)
		writeJSON(w, http.StatusCreated, githubComment(c))
	case m.is(http.MethodPatch, ghComment):
		b, err := f.jsonBody(r, []string{"body"}, nil)
		if err != nil {
			return fail(http.StatusUnprocessableEntity, err)
		}
		id, _ := strconv.ParseInt(ghComment.FindStringSubmatch(path)[1], 10, 64)
		c := f.comment(id)
		switch {
		case c == nil:
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		case c.User != fakeUser:
			return fail(http.StatusForbidden, fmt.Errorf("edit of %s's comment %d", c.User, id))
		default:
			c.Body = b["body"]
			writeJSON(w, http.StatusOK, githubComment(c))
		}
	default:
		return false
	}
	return true
}

type matcher struct{ method, path string }

func (m matcher) is(method string, re *regexp.Regexp) bool {
	return m.method == method && re.MatchString(m.path)
}

// onlyQuery fails on a query parameter the endpoint does not document.
func onlyQuery(q map[string][]string, allowed ...string) error {
	for k := range q {
		if !contains(allowed, k) {
			return fmt.Errorf("undocumented query parameter %q", k)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// githubPR is a pull request in the documented shape (the fields arbor reads
// and their neighbours).
func githubPR(p *fakePR) map[string]any {
	labels := []any{}
	for i, l := range p.Labels {
		labels = append(labels, map[string]any{"id": i + 1, "name": l, "color": "f29513", "default": false})
	}
	headRepo := map[string]any{"id": 1, "full_name": "acme/shop", "fork": false}
	if p.Fork {
		headRepo = map[string]any{"id": 2, "full_name": "someone/shop", "fork": true}
	}
	return map[string]any{
		"url": fmt.Sprintf("https://api.github.com/repos/acme/shop/pulls/%d", p.Number), "id": 100 + p.Number, "number": p.Number,
		"state": "open", "locked": false, "title": "PR " + p.Branch, "draft": p.Draft, "labels": labels,
		"html_url": fmt.Sprintf("https://github.com/acme/shop/pull/%d", p.Number),
		"user":     map[string]any{"login": "dev", "id": 7},
		"head":     map[string]any{"label": "acme:" + p.Branch, "ref": p.Branch, "sha": p.SHA, "repo": headRepo},
		"base": map[string]any{"label": "acme:main", "ref": "main", "sha": strings.Repeat("0", 39) + "1",
			"repo": map[string]any{"id": 1, "full_name": "acme/shop", "fork": false}},
	}
}

func githubComment(c *fakeComment) map[string]any {
	return map[string]any{"id": c.ID, "node_id": "IC_x", "body": c.Body, "user": map[string]any{"login": c.User, "id": 9},
		"html_url": fmt.Sprintf("https://github.com/acme/shop/pull/1#issuecomment-%d", c.ID), "created_at": "2026-11-28T10:00:00Z"}
}

// TestGitHubContract runs the Gitea scenarios against the GitHub contract server.
func TestGitHubContract(t *testing.T) {
	runContract(t, githubFake, http.StatusForbidden)
}
