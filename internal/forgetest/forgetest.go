// Package forgetest connects tests to a real git forge: the Gitea that `make test`
// starts on loopback (hack/gitea.sh) before `go test` runs.
//
// Tests that need the forge call Gitea(t). Under `go test -short` they are skipped;
// otherwise a missing or unreachable Gitea fails the test, so that CI never passes by
// skipping. The Forge it returns creates repositories over Gitea's API (each deleted
// when its test ends), pushes local repositories over smart HTTP with the token, and
// adds webhooks, pull requests, labels, commit statuses and comments, the way a
// developer and the forge itself would around arbor.
package forgetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/gittest"
	"github.com/arbordev/arbor/internal/testcluster"
)

// The variables `make test` sets from the last line of `hack/gitea.sh up`.
const (
	EnvURL       = "ARBOR_TEST_GITEA_URL"        // base URL, e.g. http://127.0.0.1:3123
	EnvTokenFile = "ARBOR_TEST_GITEA_TOKEN_FILE" // file holding an admin's access token
)

// callTimeout bounds one API call, so a hung Gitea fails a test instead of stalling it.
const callTimeout = 30 * time.Second

// Forge is a handle on the running Gitea, authenticated as the token's user.
type Forge struct {
	URL   string // base URL without a trailing slash
	User  string // login of the token's user, the owner of the repositories created
	token string
	http  *http.Client
}

// Gitea returns the test forge after checking that it answers and accepts the token.
func Gitea(t testing.TB) *Forge {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the local Gitea (run `make test`)")
	}
	base, tokenFile := os.Getenv(EnvURL), os.Getenv(EnvTokenFile)
	if base == "" || tokenFile == "" {
		t.Fatalf("integration test needs the local Gitea: run `make test`, or `eval \"$(hack/gitea.sh up | tail -n1)\"` to set %s and %s", EnvURL, EnvTokenFile)
	}
	raw, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatalf("gitea token: %v", err)
	}
	f := &Forge{URL: strings.TrimRight(base, "/"), token: strings.TrimSpace(string(raw)), http: &http.Client{}}
	var me struct {
		Login string `json:"login"`
	}
	if err := f.do(http.MethodGet, "/user", nil, &me); err != nil {
		t.Fatalf("gitea at %s does not answer as expected: %v", f.URL, err)
	}
	f.User = me.Login
	return f
}

// Token returns the access token, for code under test that talks to the forge itself.
func (f *Forge) Token() string { return f.token }

// Call sends one request to the API below /api/v1 (path like "/repos/o/r/pulls"),
// with in as the JSON body when not nil, and decodes the answer into out when not nil.
// Any status other than 2xx fails t.
func (f *Forge) Call(t testing.TB, method, path string, in, out any) {
	t.Helper()
	if err := f.do(method, path, in, out); err != nil {
		t.Fatal(err)
	}
}

// Do is Call that returns the error instead of failing the test, for a test
// that waits for the forge to catch up.
func (f *Forge) Do(method, path string, in, out any) error { return f.do(method, path, in, out) }

func (f *Forge) do(method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("gitea %s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.URL+"/api/v1"+path, body)
	if err != nil {
		return fmt.Errorf("gitea %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "token "+f.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return fmt.Errorf("gitea %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("gitea %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("gitea %s %s: %s: %.500s", method, path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("gitea %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// Repo is a repository on the forge.
type Repo struct {
	Owner    string `json:"-"`
	Name     string `json:"name"`
	FullName string `json:"full_name"` // owner/name
	CloneURL string `json:"clone_url"` // smart HTTP URL, without credentials
	HTMLURL  string `json:"html_url"`
}

func (r Repo) path() string { return "/repos/" + r.FullName }

// CreateRepo creates an empty public repository of the token's user, named after
// prefix and made unique, and deletes it when the test ends.
func (f *Forge) CreateRepo(t testing.TB, prefix string) Repo {
	t.Helper()
	name := testcluster.Name(prefix)
	var r Repo
	f.Call(t, http.MethodPost, "/user/repos", map[string]any{"name": name, "default_branch": "main"}, &r)
	r.Owner = f.User
	t.Cleanup(func() {
		if err := f.do(http.MethodDelete, r.path(), nil, nil); err != nil {
			t.Logf("delete repository %s: %v", r.FullName, err)
		}
	})
	return r
}

// Push runs `git push` in the local repository dir (made with internal/gittest) to r
// over smart HTTP, with the token as the password. The credentials go to git through
// its environment (GIT_CONFIG_*), never on its command line or in a URL it could print.
func (f *Forge) Push(t testing.TB, dir string, r Repo, args ...string) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(f.User + ":" + f.token))
	cmd := gittest.Command(dir, append([]string{"push", r.CloneURL}, args...)...)
	cmd.Env = append(cmd.Env, "GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http."+f.URL+"/.extraHeader", "GIT_CONFIG_VALUE_0=Authorization: Basic "+auth,
		"GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git push %s %s: %v\n%s", r.CloneURL, strings.Join(args, " "), err, out)
	}
}

// AddWebhook adds an active Gitea webhook to r that posts JSON for events (for example
// "push", "pull_request") to target, signed with secret, and returns its id.
func (f *Forge) AddWebhook(t testing.TB, r Repo, target, secret string, events ...string) int64 {
	t.Helper()
	var hook struct {
		ID int64 `json:"id"`
	}
	f.Call(t, http.MethodPost, r.path()+"/hooks", map[string]any{
		"type":   "gitea",
		"active": true,
		"events": events,
		"config": map[string]string{"url": target, "content_type": "json", "secret": secret},
	}, &hook)
	return hook.ID
}

// PullRequest is the part of a Gitea pull request that tests look at.
type PullRequest struct {
	Number  int64   `json:"number"`
	Title   string  `json:"title"`
	State   string  `json:"state"` // "open" or "closed"
	Draft   bool    `json:"draft"`
	Merged  bool    `json:"merged"`
	HTMLURL string  `json:"html_url"`
	Labels  []Label `json:"labels"`
	Head    Branch  `json:"head"`
	Base    Branch  `json:"base"`
}

// Branch is one side of a pull request.
type Branch struct {
	Ref string `json:"ref"`
	SHA string `json:"sha"`
}

// OpenPR opens a pull request of head into base.
func (f *Forge) OpenPR(t testing.TB, r Repo, head, base, title string) PullRequest {
	t.Helper()
	var pr PullRequest
	f.Call(t, http.MethodPost, r.path()+"/pulls", map[string]any{"head": head, "base": base, "title": title}, &pr)
	return pr
}

// PR reads pull request number.
func (f *Forge) PR(t testing.TB, r Repo, number int64) PullRequest {
	t.Helper()
	var pr PullRequest
	f.Call(t, http.MethodGet, fmt.Sprintf("%s/pulls/%d", r.path(), number), nil, &pr)
	return pr
}

// SetPRState closes ("closed") or reopens ("open") pull request number.
func (f *Forge) SetPRState(t testing.TB, r Repo, number int64, state string) PullRequest {
	t.Helper()
	var pr PullRequest
	f.Call(t, http.MethodPatch, fmt.Sprintf("%s/pulls/%d", r.path(), number), map[string]any{"state": state}, &pr)
	return pr
}

// Label is a repository label.
type Label struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// CreateLabel creates a label in r.
func (f *Forge) CreateLabel(t testing.TB, r Repo, name string) Label {
	t.Helper()
	var l Label
	f.Call(t, http.MethodPost, r.path()+"/labels", map[string]any{"name": name, "color": "#2e8b57"}, &l)
	return l
}

// AddLabels adds labels to pull request (or issue) number and returns all its labels.
func (f *Forge) AddLabels(t testing.TB, r Repo, number int64, labels ...Label) []Label {
	t.Helper()
	ids := make([]int64, len(labels))
	for i, l := range labels {
		ids[i] = l.ID
	}
	var all []Label
	f.Call(t, http.MethodPost, fmt.Sprintf("%s/issues/%d/labels", r.path(), number), map[string]any{"labels": ids}, &all)
	return all
}

// RemoveLabel removes label from pull request (or issue) number.
func (f *Forge) RemoveLabel(t testing.TB, r Repo, number int64, label Label) {
	t.Helper()
	f.Call(t, http.MethodDelete, fmt.Sprintf("%s/issues/%d/labels/%d", r.path(), number, label.ID), nil, nil)
}

// Status is a commit status.
type Status struct {
	ID          int64  `json:"id"`     // grows with each update: the latest has the largest
	State       string `json:"status"` // pending, success, error, failure, warning
	Context     string `json:"context"`
	TargetURL   string `json:"target_url"`
	Description string `json:"description"`
}

// SetStatus sets a commit status on sha, as a CI system (or arbor) would.
func (f *Forge) SetStatus(t testing.TB, r Repo, sha string, s Status) {
	t.Helper()
	f.Call(t, http.MethodPost, r.path()+"/statuses/"+url.PathEscape(sha), map[string]any{
		"state": s.State, "context": s.Context, "target_url": s.TargetURL, "description": s.Description,
	}, nil)
}

// Statuses lists the commit statuses of sha in no order to rely on (every update of a context
// is its own entry).
func (f *Forge) Statuses(t testing.TB, r Repo, sha string) []Status {
	t.Helper()
	var list []Status
	f.Call(t, http.MethodGet, r.path()+"/statuses/"+url.PathEscape(sha)+"?sort=recentupdate&limit=50", nil, &list)
	return list
}

// Comment is a comment on a pull request (or issue).
type Comment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
	User struct {
		Login string `json:"login"`
	} `json:"user"`
}

// AddComment comments on pull request (or issue) number.
func (f *Forge) AddComment(t testing.TB, r Repo, number int64, body string) Comment {
	t.Helper()
	var c Comment
	f.Call(t, http.MethodPost, fmt.Sprintf("%s/issues/%d/comments", r.path(), number), map[string]any{"body": body}, &c)
	return c
}

// Comments lists the comments on pull request (or issue) number, oldest first.
func (f *Forge) Comments(t testing.TB, r Repo, number int64) []Comment {
	t.Helper()
	var list []Comment
	f.Call(t, http.MethodGet, fmt.Sprintf("%s/issues/%d/comments", r.path(), number), nil, &list)
	return list
}
