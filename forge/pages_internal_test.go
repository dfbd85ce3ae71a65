package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHasNext(t *testing.T) {
	cases := map[string]bool{
		`<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last"`:  true,
		`<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=1>; rel="first"`: false,
		`<https://g/x?labels=a,b&page=2>; rel="next"`:                                                   true,
		`<https://g/x?page=2>; rel="prev next"`:                                                         true,
		`<https://g/x?page=2>; REL=next`:                                                                true,
		`<https://g/x?rel=next>; rel="last"`:                                                            false,
		``:                                                                                              false,
	}
	for link, want := range cases {
		h := http.Header{}
		if link != "" {
			h.Set("Link", link)
		}
		if got := hasNext(h); got != want {
			t.Errorf("hasNext(%q) = %v, want %v", link, got, want)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "4999")
	h.Set("X-RateLimit-Reset", "1800000000")
	if rl, ok := parseRateLimit(h); !ok || rl.Limit != 5000 || rl.Remaining != 4999 || !rl.Reset.Equal(time.Unix(1800000000, 0)) {
		t.Errorf("GitHub headers: %+v, %v", rl, ok)
	}
	h = http.Header{}
	h.Set("RateLimit-Limit", "600")
	h.Set("RateLimit-Remaining", "0")
	h.Set("RateLimit-Reset", "1800000060")
	if rl, ok := parseRateLimit(h); !ok || rl.Limit != 600 || rl.Remaining != 0 {
		t.Errorf("GitLab headers: %+v, %v", rl, ok)
	}
	h = http.Header{}
	h.Set("X-RateLimit-Remaining", "lots")
	if _, ok := parseRateLimit(h); ok {
		t.Errorf("garbage rate-limit headers were read")
	}
}

// pagedServer serves n items, size per page, with an ETag per page computed
// from a version each page has, and counts requests per page.
type pagedServer struct {
	n, size    int
	version    map[int]int // page → version; a bump changes its ETag
	requests   map[int]int
	cond       map[int]int // requests with If-None-Match
	alwaysNext bool
}

func (p *pagedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pg, _ := strconv.Atoi(r.URL.Query().Get("page"))
	p.requests[pg]++
	etag := fmt.Sprintf(`"p%d-v%d"`, pg, p.version[pg])
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		p.cond[pg]++
		if inm == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	from, to := min((pg-1)*p.size, p.n), min(pg*p.size, p.n)
	if to < p.n || p.alwaysNext {
		w.Header().Set("Link", fmt.Sprintf(`<http://x/?page=%d>; rel="next"`, pg+1))
	}
	w.Header().Set("ETag", etag)
	fmt.Fprint(w, "[")
	for i := from; i < to; i++ {
		if i > from {
			fmt.Fprint(w, ",")
		}
		fmt.Fprintf(w, "%d", i)
	}
	fmt.Fprint(w, "]")
}

func newPaged(t *testing.T, n, size int) (*pagedServer, *client) {
	p := &pagedServer{n: n, size: size, version: map[int]int{}, requests: map[int]int{}, cond: map[int]int{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	c := newClient(GitHub, srv.URL, Options{Token: "tok-0123456789abcdef"}, func(http.Header, string) {}, nil)
	return p, c
}

// When page 2 of 3 changed, page 1 answered 304 and must be read again, so
// the caller gets every page.
func TestListPagesPartialChange(t *testing.T) {
	p, c := newPaged(t, 25, 10)
	ctx := context.Background()
	pages, tag, nm, err := c.listPages(ctx, "/x", nil, pager{"page", "per_page", 10}, "")
	if err != nil || nm || len(pages) != 3 {
		t.Fatalf("first listing: %d pages, notModified %v, %v", len(pages), nm, err)
	}
	if _, tag2, nm, err := c.listPages(ctx, "/x", nil, pager{"page", "per_page", 10}, tag); err != nil || !nm || tag2 != tag {
		t.Fatalf("unchanged listing: notModified %v, %v", nm, err)
	}
	if p.cond[1] != 1 || p.cond[2] != 1 || p.cond[3] != 1 {
		t.Errorf("conditional requests per page: %v, want one each", p.cond)
	}
	p.version[2]++
	pages, tag3, nm, err := c.listPages(ctx, "/x", nil, pager{"page", "per_page", 10}, tag)
	if err != nil || nm || len(pages) != 3 || tag3 == tag {
		t.Fatalf("listing after page 2 changed: %d pages, notModified %v, %v", len(pages), nm, err)
	}
	for i, want := range []string{"[0,1,2,3,4,5,6,7,8,9]", "[10,11,12,13,14,15,16,17,18,19]", "[20,21,22,23,24]"} {
		if string(pages[i]) != want {
			t.Errorf("page %d: %s, want %s", i+1, pages[i], want)
		}
	}
}

// A listing longer than maxPages is an error, never a part of the list.
func TestListPagesBounded(t *testing.T) {
	p, c := newPaged(t, 10, 1)
	p.alwaysNext = true
	_, _, _, err := c.listPages(context.Background(), "/x", nil, pager{"page", "per_page", 1}, "")
	if err == nil {
		t.Fatalf("endless listing: no error")
	}
	if p.requests[maxPages+1] != 0 {
		t.Errorf("read past %d pages", maxPages)
	}
}

// A forge (or a proxy) that quotes the token back: the error masks it.
func TestErrorMasksToken(t *testing.T) {
	const token = "tok-secret-0123456789"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"message":"bad credentials: %s"}`, r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	g, err := New(Options{Type: GitHub, URL: srv.URL, Repo: "acme/shop", Token: token, App: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.ListPullRequests(context.Background(), "")
	if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "github GET /repos/acme/shop/pulls: 401 Unauthorized: bad credentials: Bearer xxxxx") {
		t.Errorf("error: %v; want the path and the forge's message with the token masked", err)
	}
}

// GitHub's secondary rate limit: 403 with Retry-After while the primary
// limit has requests left. A plain 403 is a refusal, not a rate limit.
func TestSecondaryRateLimit(t *testing.T) {
	retry := "30"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "4000")
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"You have exceeded a secondary rate limit."}`)
	}))
	t.Cleanup(srv.Close)
	g, err := New(Options{Type: GitHub, URL: srv.URL, Repo: "acme/shop", Token: "tok-0123456789abcdef", App: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.ListPullRequests(context.Background(), "")
	var fe *Error
	if !errors.As(err, &fe) || !fe.RateLimited || fe.RetryAfter != 30*time.Second {
		t.Errorf("secondary rate limit: %v, want RateLimited with a 30s wait", err)
	}
	retry = ""
	_, err = g.ListPullRequests(context.Background(), "")
	if !errors.As(err, &fe) || fe.RateLimited {
		t.Errorf("plain 403: %v, want a refusal that is not a rate limit", err)
	}
}

// TestForgeThatNeverAnswers: a forge that accepts the connection and never
// answers ends each call at the client's timeout with an error naming the
// call; nothing is listed, no status or comment is taken as written.
func TestForgeThatNeverAnswers(t *testing.T) {
	hung := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hung:
		}
	}))
	t.Cleanup(func() { close(hung); srv.Close() })
	g, err := New(Options{Type: Gitea, URL: srv.URL, Repo: "acme/shop", Token: "tok", App: "shop",
		HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := g.ListPullRequests(ctx, "")
	if err == nil || len(l.PullRequests) != 0 || !strings.Contains(err.Error(), "/repos/acme/shop/pulls") {
		t.Errorf("listing: %+v, %v; want an error naming the call and nothing listed", l, err)
	}
	if err := g.SetStatus(ctx, "abc", Status{Context: "arbor/shop", State: StatePending}); err == nil {
		t.Error("a status sent to a forge that never answers: no error")
	}
	if _, err := g.UpsertComment(ctx, 1, "hello"); err == nil {
		t.Error("a comment sent to a forge that never answers: no error")
	}
	// Not remembered as written: the next try sends it again (and fails again).
	if err := g.SetStatus(ctx, "abc", Status{Context: "arbor/shop", State: StatePending}); err == nil {
		t.Error("a status that never arrived was remembered as set")
	}
}
