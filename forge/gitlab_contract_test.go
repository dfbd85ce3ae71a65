package forge_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/arbordev/arbor/forge"
)

// gitlabFake serves GitLab's REST API v4 for the project acme/web/shop, named
// by its URL-encoded path (docs.gitlab.com/api: merge_requests, commits
// statuses, notes, users, rest/#pagination).
func gitlabFake(t *testing.T) fakeFixture {
	f := newFakeForge(t)
	f.limitedStatus = http.StatusTooManyRequests
	f.limitedBody = "Retry later\n"
	reset := time.Now().Add(time.Minute).Unix()
	rate := func(h http.Header) {
		h.Set("RateLimit-Limit", strconv.Itoa(f.limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(f.remaining))
		h.Set("RateLimit-Observed", strconv.Itoa(f.limit-f.remaining))
		h.Set("RateLimit-Reset", strconv.FormatInt(reset, 10))
		h.Set("RateLimit-ResetTime", time.Unix(reset, 0).UTC().Format(http.TimeFormat))
	}
	srv := f.serve("/api/v4", func(w http.ResponseWriter, r *http.Request, path string) bool {
		if r.Header.Get("Authorization") != "Bearer "+fakeToken && r.Header.Get("PRIVATE-TOKEN") != fakeToken {
			t.Errorf("contract: %s %s: no token in Authorization: Bearer or PRIVATE-TOKEN", r.Method, path)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
			return true
		}
		return gitlabRoute(f, w, r, path, rate)
	})
	return fakeFixture{kind: forge.GitLab, fake: f, url: srv.URL, repo: "acme/web/shop", descMax: 255,
		stateFor: func(s forge.State) string {
			if s == forge.StateFailure || s == forge.StateError {
				return "failed"
			}
			return string(s)
		}}
}

// The project is acme/web/shop, its path URL-encoded as one segment.
var (
	glMRs      = regexp.MustCompile(`^/projects/acme%2Fweb%2Fshop/merge_requests$`)
	glStatuses = regexp.MustCompile(`^/projects/acme%2Fweb%2Fshop/statuses/([0-9a-f]{40})$`)
	glNotes    = regexp.MustCompile(`^/projects/acme%2Fweb%2Fshop/merge_requests/([0-9]+)/notes$`)
	glNote     = regexp.MustCompile(`^/projects/acme%2Fweb%2Fshop/merge_requests/([0-9]+)/notes/([0-9]+)$`)
	glUser     = regexp.MustCompile(`^/user$`)
)

func gitlabRoute(f *fakeForge, w http.ResponseWriter, r *http.Request, path string, rate func(http.Header)) bool {
	fail := func(status int, err error) bool {
		f.t.Errorf("contract: %s %s: %v", r.Method, path, err)
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return true
	}
	q := r.URL.Query()
	if r.Method != http.MethodGet {
		f.writes++
	}
	listing := r.Method == http.MethodGet && (glMRs.MatchString(path) || glNotes.MatchString(path))
	if !listing {
		if !f.spend() {
			f.limited(w, rate)
			return true
		}
		rate(w.Header())
	}
	switch m := (matcher{r.Method, path}); {
	case m.is(http.MethodGet, glMRs):
		if err := onlyQuery(q, "state", "order_by", "sort", "labels", "source_branch", "target_branch", "wip", "per_page", "page"); err != nil {
			return fail(http.StatusBadRequest, err)
		}
		if q.Get("state") != "opened" {
			return fail(http.StatusBadRequest, fmt.Errorf("state=%q, want opened", q.Get("state")))
		}
		var open []any
		for _, p := range f.prs {
			if !p.Closed {
				open = append(open, gitlabMR(p))
			}
		}
		return f.gitlabList(w, r, q, open, rate, fail)
	case m.is(http.MethodPost, glStatuses):
		b, err := f.jsonBody(r, []string{"state"}, []string{"ref", "name", "context", "target_url", "description", "coverage", "pipeline_id"})
		if err != nil {
			return fail(http.StatusBadRequest, err)
		}
		switch b["state"] {
		case "pending", "running", "success", "failed", "canceled", "skipped":
		default:
			return fail(http.StatusBadRequest, fmt.Errorf("state %q", b["state"]))
		}
		if n := len([]rune(b["description"])); n > 255 {
			return fail(http.StatusBadRequest, fmt.Errorf("description of %d characters, over the 255 arbor keeps to", n))
		}
		sha := glStatuses.FindStringSubmatch(path)[1]
		name := b["name"]
		if name == "" {
			name = "default"
		}
		for i := len(f.statuses) - 1; i >= 0; i-- {
			if s := f.statuses[i]; s.SHA == sha && s.Context == name {
				if s.State == b["state"] {
					// What GitLab answers for a status set twice.
					writeJSON(w, http.StatusBadRequest, map[string]string{"message": fmt.Sprintf("Cannot transition status via :enqueue from :%s (Reason(s): Status cannot transition via \"enqueue\")", s.State)})
					return true
				}
				break
			}
		}
		f.statuses = append(f.statuses, fakeStatus{SHA: sha, Context: name, State: b["state"], Description: b["description"], TargetURL: b["target_url"]})
		writeJSON(w, http.StatusCreated, map[string]any{"id": f.id(), "sha": sha, "ref": nil, "status": b["state"], "name": name,
			"target_url": b["target_url"], "description": b["description"], "allow_failure": false, "author": map[string]any{"username": fakeUser}})
	case m.is(http.MethodGet, glUser):
		writeJSON(w, http.StatusOK, map[string]any{"id": 1, "username": fakeUser, "name": "arbor", "state": "active"})
	case m.is(http.MethodGet, glNotes):
		if err := onlyQuery(q, "sort", "order_by", "per_page", "page"); err != nil {
			return fail(http.StatusBadRequest, err)
		}
		n, _ := strconv.ParseInt(glNotes.FindStringSubmatch(path)[1], 10, 64)
		var list []any
		for _, c := range f.comments[n] {
			list = append(list, gitlabNote(c))
		}
		return f.gitlabList(w, r, q, list, rate, fail)
	case m.is(http.MethodPost, glNotes):
		b, err := f.jsonBody(r, []string{"body"}, []string{"created_at", "internal", "merge_request_diff_head_sha"})
		if err != nil {
			return fail(http.StatusBadRequest, err)
		}
		n, _ := strconv.ParseInt(glNotes.FindStringSubmatch(path)[1], 10, 64)
		if f.pr(n) == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not found"})
			return true
		}
		c := &fakeComment{ID: f.id(), User: fakeUser, Body: b["body"]}
		f.comments[n] = append(f.comments[n], c)
		writeJSON(w, http.StatusCreated, gitlabNote(c))
	case m.is(http.MethodPut, glNote):
		b, err := f.jsonBody(r, []string{"body"}, nil)
		if err != nil {
			return fail(http.StatusBadRequest, err)
		}
		id, _ := strconv.ParseInt(glNote.FindStringSubmatch(path)[2], 10, 64)
		c := f.comment(id)
		switch {
		case c == nil:
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not found"})
		case c.User != fakeUser || c.System:
			return fail(http.StatusForbidden, fmt.Errorf("edit of %s's note %d", c.User, id))
		default:
			c.Body = b["body"]
			writeJSON(w, http.StatusOK, gitlabNote(c))
		}
	default:
		return false
	}
	return true
}

// gitlabList answers a paged listing with GitLab's pagination headers.
func (f *fakeForge) gitlabList(w http.ResponseWriter, r *http.Request, q map[string][]string, items []any, rate func(http.Header), fail func(int, error) bool) bool {
	from, to, pg, next, err := page(q, len(items), 20)
	if err != nil {
		return fail(http.StatusBadRequest, err)
	}
	w.Header().Set("X-Page", strconv.Itoa(pg))
	w.Header().Set("X-Total", strconv.Itoa(len(items)))
	if next {
		w.Header().Set("X-Next-Page", strconv.Itoa(pg+1))
	}
	f.writeList(w, r, items[from:to], next, pg, rate)
	return true
}

func gitlabMR(p *fakePR) map[string]any {
	source := 1
	if p.Fork {
		source = 99
	}
	labels := append([]string{}, p.Labels...)
	return map[string]any{
		"id": 500 + p.Number, "iid": p.Number, "project_id": 1, "title": "MR " + p.Branch, "state": "opened",
		"draft": p.Draft, "work_in_progress": p.Draft, "labels": labels, "source_branch": p.Branch, "target_branch": "main",
		"source_project_id": source, "target_project_id": 1, "sha": p.SHA, "merge_status": "can_be_merged",
		"web_url": fmt.Sprintf("https://gitlab.example.com/acme/web/shop/-/merge_requests/%d", p.Number),
		"author":  map[string]any{"id": 7, "username": "dev"},
	}
}

func gitlabNote(c *fakeComment) map[string]any {
	return map[string]any{"id": c.ID, "type": nil, "body": c.Body, "author": map[string]any{"id": 9, "username": c.User},
		"created_at": "2026-11-28T10:00:00.000Z", "system": c.System, "noteable_type": "MergeRequest", "internal": false}
}

// TestGitLabContract runs the Gitea scenarios against the GitLab contract server.
func TestGitLabContract(t *testing.T) {
	runContract(t, gitlabFake, http.StatusTooManyRequests)
}

// TestGitLabStatusSetTwice: GitLab refuses to set a state a status already
// has; a client that does not remember it (a restart) takes that as done.
func TestGitLabStatusSetTwice(t *testing.T) {
	x := gitlabFake(t)
	ctx := ctxT(t)
	s := forge.Status{Context: "arbor/shop", State: forge.StatePending}
	sha := "1111111111111111111111111111111111111111"
	for range 2 {
		if err := x.client(t, "shop").SetStatus(ctx, sha, s); err != nil {
			t.Fatalf("pending set again by a new client: %v", err)
		}
	}
	if len(x.fake.statuses) != 1 {
		t.Errorf("statuses: %+v, want one", x.fake.statuses)
	}
}
