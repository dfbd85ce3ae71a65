package forge_test

// The contract servers: GitHub and GitLab cannot be reached from the test
// machines, so their clients are tested against loopback servers that check
// every request against the providers' documented REST API (method, path,
// query, headers, JSON body fields) and answer with the documented shapes.
// A request a server does not recognise fails the test. The state (pull
// requests, comments, statuses, rate limit) is shared; each provider's file
// holds its routes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbordev/arbor/forge"
)

const (
	fakeToken = "tok-0123456789abcdef"
	fakeUser  = "arbor-bot"
)

type fakePR struct {
	Number int64
	Branch string
	SHA    string
	Labels []string
	Draft  bool
	Fork   bool
	Closed bool
}

type fakeComment struct {
	ID     int64
	User   string
	Body   string
	System bool // GitLab's system notes
}

type fakeStatus struct {
	SHA, Context, State, Description, TargetURL string
}

// fakeForge is the state behind a contract server.
type fakeForge struct {
	t *testing.T

	mu          sync.Mutex
	prs         []*fakePR
	comments    map[int64][]*fakeComment
	statuses    []fakeStatus
	nextID      int64
	limit       int
	remaining   int
	requests    int // every request
	notModified int // answered 304
	writes      int // POST, PATCH, PUT

	// How the provider refuses a request over the rate limit.
	limitedStatus int
	limitedBody   string
}

func newFakeForge(t *testing.T) *fakeForge {
	return &fakeForge{t: t, comments: map[int64][]*fakeComment{}, nextID: 1000, limit: 5000, remaining: 5000}
}

// serve wraps a provider's router: counts, checks the rate limit, and fails
// the test on a request the router does not know (it returns false).
func (f *fakeForge) serve(prefix string, route func(w http.ResponseWriter, r *http.Request, path string) bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests++
		path, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix)
		if !ok || !route(w, r, path) {
			f.t.Errorf("contract: unexpected request %s %s", r.Method, r.URL.RequestURI())
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
		}
	}))
	f.t.Cleanup(srv.Close)
	return srv
}

// spend takes one request off the rate limit, and tells whether one was left.
func (f *fakeForge) spend() bool {
	if f.remaining == 0 {
		return false
	}
	f.remaining--
	return true
}

func (f *fakeForge) pr(n int64) *fakePR {
	for _, p := range f.prs {
		if p.Number == n {
			return p
		}
	}
	return nil
}

func (f *fakeForge) comment(id int64) *fakeComment {
	for _, list := range f.comments {
		for _, c := range list {
			if c.ID == id {
				return c
			}
		}
	}
	return nil
}

func (f *fakeForge) id() int64 { f.nextID++; return f.nextID }

// jsonBody decodes a request's JSON object, checking the Content-Type, that
// the fields in required are present and non-empty strings, and that no
// field outside allowed is sent (every field must be documented).
func (f *fakeForge) jsonBody(r *http.Request, required, allowed []string) (map[string]string, error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return nil, fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("body is not a JSON object: %v", err)
	}
	out := map[string]string{}
	for k, v := range m {
		if !slices.Contains(allowed, k) && !slices.Contains(required, k) {
			return nil, fmt.Errorf("undocumented field %q", k)
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("field %q is %T, want a string", k, v)
		}
		out[k] = s
	}
	for _, k := range required {
		if out[k] == "" {
			return nil, fmt.Errorf("required field %q missing", k)
		}
	}
	return out, nil
}

// page returns items [from, to) of n for page and per-page query values
// (documented defaults: page 1, 30 or 20 per page, at most 100), and
// whether a next page exists.
func page(q map[string][]string, n, defSize int) (from, to int, pg int, next bool, err error) {
	pg, size := 1, defSize
	if v := first(q, "page"); v != "" {
		if pg, err = strconv.Atoi(v); err != nil || pg < 1 {
			return 0, 0, 0, false, fmt.Errorf("page=%q", v)
		}
	}
	if v := first(q, "per_page"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 100 {
			return 0, 0, 0, false, fmt.Errorf("per_page=%q, documented range 1..100", v)
		}
	}
	from = min((pg-1)*size, n)
	to = min(from+size, n)
	return from, to, pg, to < n, nil
}

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// writeList answers a listing page with an ETag, a Link header, and 304 when
// If-None-Match matches (a 304 does not count against the rate limit: both
// providers document that for conditional requests).
func (f *fakeForge) writeList(w http.ResponseWriter, r *http.Request, items any, next bool, pg int, rate func(http.Header)) {
	body, err := json.Marshal(items)
	if err != nil {
		f.t.Error(err)
	}
	etag := fmt.Sprintf(`W/"%x"`, fnv(body))
	if r.Header.Get("If-None-Match") == etag {
		f.notModified++
		rate(w.Header())
		w.Header().Set("ETag", etag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if !f.spend() {
		f.limited(w, rate)
		return
	}
	rate(w.Header())
	w.Header().Set("ETag", etag)
	if next {
		u := *r.URL
		q := u.Query()
		q.Set("page", strconv.Itoa(pg+1))
		u.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s>; rel="next"`, r.Host, u.RequestURI()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// limited refuses a request over the rate limit as the provider does.
func (f *fakeForge) limited(w http.ResponseWriter, rate func(http.Header)) {
	rate(w.Header())
	w.Header().Set("Retry-After", "60")
	w.WriteHeader(f.limitedStatus)
	w.Write([]byte(f.limitedBody))
}

func fnv(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// fakeFixture is a contract server with its client constructor.
type fakeFixture struct {
	kind     forge.Type
	fake     *fakeForge
	url      string
	repo     string
	descMax  int
	stateFor func(forge.State) string // the provider's word for a state
}

func (x fakeFixture) client(t *testing.T, app string) forge.Forge {
	t.Helper()
	g, err := forge.New(forge.Options{Type: x.kind, URL: x.url, Repo: x.repo, Token: fakeToken, App: app})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// seedPRs gives the fake: #1 feature (labelled preview), #2 a draft, #3 from
// a fork, and extra same-repository pull requests from #10 on, so that the
// listing spans pages.
func seedPRs(f *fakeForge, extra int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prs = append(f.prs,
		&fakePR{Number: 1, Branch: "feature", SHA: "1111111111111111111111111111111111111111", Labels: []string{"preview", "db"}},
		&fakePR{Number: 2, Branch: "wip", SHA: "2222222222222222222222222222222222222222", Draft: true},
		&fakePR{Number: 3, Branch: "from-fork", SHA: "3333333333333333333333333333333333333333", Fork: true},
	)
	for i := range extra {
		f.prs = append(f.prs, &fakePR{Number: int64(10 + i), Branch: fmt.Sprintf("b%d", i), SHA: fmt.Sprintf("%040d", 10+i)})
	}
}

// testContractListing: the same listing scenario as TestGiteaListPullRequests.
func testContractListing(t *testing.T, x fakeFixture) {
	ctx := ctxT(t)
	seedPRs(x.fake, 120)
	g := x.client(t, "shop")

	l, err := g.ListPullRequests(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := byNumber(l.PullRequests)
	if len(got) != 122 {
		t.Fatalf("listed %d pull requests, want 122 (all pages, not the fork's #3)", len(got))
	}
	if _, ok := got[3]; ok {
		t.Errorf("the fork's pull request #3 was listed")
	}
	if p := got[1]; p.HeadBranch != "feature" || p.HeadSHA != "1111111111111111111111111111111111111111" || !p.SameRepo || p.Draft || !slices.Equal(p.Labels, []string{"preview", "db"}) || p.State != "open" || p.URL == "" {
		t.Errorf("#1: %+v", p)
	}
	if p := got[2]; !p.Draft || p.HeadBranch != "wip" {
		t.Errorf("#2: %+v, want a draft of wip", p)
	}
	if got[129].HeadBranch != "b119" {
		t.Errorf("last pull request: %+v", got[129])
	}
	before := g.RateLimit()
	if !before.Known || before.Limit != 5000 || before.Remaining != 5000-2 || before.Reset.IsZero() {
		t.Errorf("rate limit after two pages: %+v, want 5000 with 4998 left and a reset", before)
	}

	again, err := g.ListPullRequests(ctx, l.ETag)
	if err != nil {
		t.Fatal(err)
	}
	if !again.NotModified || len(again.PullRequests) != 0 || again.ETag != l.ETag {
		t.Errorf("unchanged listing: %+v, want NotModified", again)
	}
	x.fake.mu.Lock()
	n304 := x.fake.notModified
	x.fake.mu.Unlock()
	if n304 != 2 || g.RateLimit().Remaining != before.Remaining {
		t.Errorf("unchanged listing: %d answers 304 (want 2), rate limit %d left (want %d: a 304 is free)", n304, g.RateLimit().Remaining, before.Remaining)
	}

	x.fake.mu.Lock()
	x.fake.pr(1).SHA = "4444444444444444444444444444444444444444"
	x.fake.pr(2).Closed = true
	x.fake.mu.Unlock()
	changed, err := g.ListPullRequests(ctx, l.ETag)
	if err != nil {
		t.Fatal(err)
	}
	got = byNumber(changed.PullRequests)
	if changed.NotModified || got[1].HeadSHA != "4444444444444444444444444444444444444444" || len(got) != 121 {
		t.Errorf("listing after a push to #1 and closing #2: NotModified %v, #1 at %s, %d listed (want 121)", changed.NotModified, got[1].HeadSHA, len(got))
	}
	if _, ok := got[2]; ok {
		t.Errorf("closed #2 still listed")
	}
}

// testContractStatus: the same scenario as TestGiteaSetStatus.
func testContractStatus(t *testing.T, x fakeFixture) {
	ctx := ctxT(t)
	g := x.client(t, "shop")
	sha := "1111111111111111111111111111111111111111"
	if err := g.SetStatus(ctx, sha, forge.Status{Context: "arbor/shop", State: forge.StatePending, Description: "deploying\nthe environment"}); err != nil {
		t.Fatal(err)
	}
	success := forge.Status{Context: "arbor/shop", State: forge.StateSuccess, Description: strings.Repeat("é", 400), TargetURL: "https://shop-feature.example.test/"}
	for range 2 {
		if err := g.SetStatus(ctx, sha, success); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.SetStatus(ctx, sha, forge.Status{Context: "arbor/shop", State: forge.StateFailure, Description: ".release.yaml:3:5: services[0].image: required"}); err != nil {
		t.Fatal(err)
	}
	x.fake.mu.Lock()
	got := slices.Clone(x.fake.statuses)
	x.fake.mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("statuses: %+v, want 3 (pending, success once, failure)", got)
	}
	if got[0].State != x.stateFor(forge.StatePending) || got[0].Description != "deploying the environment" || got[0].Context != "arbor/shop" {
		t.Errorf("first status: %+v", got[0])
	}
	if got[1].State != x.stateFor(forge.StateSuccess) || got[1].TargetURL != success.TargetURL || len([]rune(got[1].Description)) != x.descMax {
		t.Errorf("second status: %+v, want success with a description of %d characters", got[1], x.descMax)
	}
	if got[2].State != x.stateFor(forge.StateFailure) || got[2].Description != ".release.yaml:3:5: services[0].image: required" {
		t.Errorf("third status: %+v", got[2])
	}
}

// testContractComment: the same scenario as TestGiteaUpsertComment.
func testContractComment(t *testing.T, x fakeFixture) {
	ctx := ctxT(t)
	seedPRs(x.fake, 0)
	x.fake.mu.Lock()
	for _, c := range []*fakeComment{
		{User: "dev", Body: "looks good"},
		{User: fakeUser, Body: forge.Marker("other") + "\nanother app's comment"},
		{User: "mallory", Body: forge.Marker("shop") + "\nnot arbor's"},
		{User: fakeUser, Body: "system note", System: true},
	} {
		c.ID = x.fake.id()
		x.fake.comments[1] = append(x.fake.comments[1], c)
	}
	// A long thread: arbor's comment, posted after these, is on the second
	// page of the listing, where a restarted client must find it.
	for i := range 150 {
		x.fake.comments[1] = append(x.fake.comments[1], &fakeComment{ID: x.fake.id(), User: "dev", Body: fmt.Sprintf("filler %d", i)})
	}
	x.fake.mu.Unlock()

	g := x.client(t, "shop")
	r1, err := g.UpsertComment(ctx, 1, "first")
	if err != nil || r1.Action != forge.CommentCreated {
		t.Fatalf("first upsert: %+v, %v; want created", r1, err)
	}
	r2, err := g.UpsertComment(ctx, 1, "second")
	if err != nil || r2.Action != forge.CommentEdited || r2.ID != r1.ID {
		t.Fatalf("second upsert: %+v, %v; want %d edited", r2, err, r1.ID)
	}
	restarted := x.client(t, "shop")
	r3, err := restarted.UpsertComment(ctx, 1, "third")
	if err != nil || r3.Action != forge.CommentEdited || r3.ID != r1.ID {
		t.Fatalf("upsert after a restart: %+v, %v; want %d edited", r3, err, r1.ID)
	}
	x.fake.mu.Lock()
	writes := x.fake.writes
	x.fake.mu.Unlock()
	if r4, err := restarted.UpsertComment(ctx, 1, "third"); err != nil || r4.Action != forge.CommentUnchanged {
		t.Fatalf("unchanged upsert: %+v, %v", r4, err)
	}
	if r5, err := x.client(t, "shop").UpsertComment(ctx, 1, "third"); err != nil || r5.Action != forge.CommentUnchanged || r5.ID != r1.ID {
		t.Fatalf("unchanged upsert after another restart: %+v, %v", r5, err)
	}
	x.fake.mu.Lock()
	defer x.fake.mu.Unlock()
	if x.fake.writes != writes {
		t.Errorf("an unchanged upsert wrote %d times", x.fake.writes-writes)
	}
	var bodies []string
	for _, c := range x.fake.comments[1] {
		if !strings.HasPrefix(c.Body, "filler ") {
			bodies = append(bodies, c.User+": "+c.Body)
		}
	}
	want := []string{"dev: looks good", fakeUser + ": " + forge.Marker("other") + "\nanother app's comment",
		"mallory: " + forge.Marker("shop") + "\nnot arbor's", fakeUser + ": system note", fakeUser + ": " + forge.Marker("shop") + "\nthird"}
	if !slices.Equal(bodies, want) {
		t.Errorf("comments:\n%q\nwant\n%q", bodies, want)
	}
}

// testContractErrors: a spent rate limit and a refusal come back as
// *forge.Error naming the forge, method and path, with the wait asked for,
// and without the token.
func testContractErrors(t *testing.T, x fakeFixture, wantStatus int) {
	ctx := ctxT(t)
	seedPRs(x.fake, 0)
	g := x.client(t, "shop")
	x.fake.mu.Lock()
	x.fake.remaining = 0
	x.fake.mu.Unlock()
	_, err := g.ListPullRequests(ctx, "")
	var fe *forge.Error
	if !errors.As(err, &fe) {
		t.Fatalf("listing with the rate limit spent: %v, want a *forge.Error", err)
	}
	if fe.StatusCode != wantStatus || !fe.RateLimited || fe.RetryAfter != time.Minute || fe.Forge != x.kind || fe.Method != http.MethodGet {
		t.Errorf("rate-limited error: %+v", fe)
	}
	msg := err.Error()
	if !strings.Contains(msg, string(x.kind)+" GET /") || !strings.Contains(msg, "rate limit") || strings.Contains(msg, fakeToken) {
		t.Errorf("error message %q: want the forge, method, path and the forge's message, never the token", msg)
	}
	if rl := g.RateLimit(); !rl.Known || rl.Remaining != 0 {
		t.Errorf("rate limit after a refusal: %+v, want 0 left", rl)
	}
	if _, err := g.UpsertComment(ctx, 1, "x"); err == nil {
		t.Errorf("comment with the rate limit spent: no error")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.ListPullRequests(cancelled, ""); err == nil || strings.Contains(err.Error(), fakeToken) {
		t.Errorf("listing with a cancelled context: %v", err)
	}
}

// testContractConcurrent: one client used from many goroutines at once
// still keeps one comment per app.
func testContractConcurrent(t *testing.T, x fakeFixture) {
	ctx := ctxT(t)
	seedPRs(x.fake, 0)
	g := x.client(t, "shop")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = g.UpsertComment(ctx, 1, fmt.Sprintf("body %d", i))
			if err := g.SetStatus(ctx, "1111111111111111111111111111111111111111", forge.Status{Context: "arbor/shop", State: forge.StatePending, Description: fmt.Sprint(i)}); err != nil && errs[i] == nil {
				errs[i] = err
			}
			_ = g.RateLimit()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	x.fake.mu.Lock()
	defer x.fake.mu.Unlock()
	if n := len(x.fake.comments[1]); n != 1 {
		t.Errorf("%d comments after concurrent upserts, want 1", n)
	}
}

// runContract runs every scenario against fresh fakes made by mk.
func runContract(t *testing.T, mk func(t *testing.T) fakeFixture, limitedStatus int) {
	t.Run("ListPullRequests", func(t *testing.T) { testContractListing(t, mk(t)) })
	t.Run("SetStatus", func(t *testing.T) { testContractStatus(t, mk(t)) })
	t.Run("UpsertComment", func(t *testing.T) { testContractComment(t, mk(t)) })
	t.Run("Errors", func(t *testing.T) { testContractErrors(t, mk(t), limitedStatus) })
	t.Run("Concurrent", func(t *testing.T) { testContractConcurrent(t, mk(t)) })
}
