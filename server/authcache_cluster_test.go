package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/arbordev/arbor/internal/testcluster"
)

// reviewCounter counts the TokenReviews and SubjectAccessReviews a client sends.
type reviewCounter struct {
	mu     sync.Mutex
	tr, sa int
}

func (c *reviewCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		c.mu.Lock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/tokenreviews"):
			c.tr++
		case strings.HasSuffix(r.URL.Path, "/subjectaccessreviews"):
			c.sa++
		}
		c.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

func (c *reviewCounter) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tr, c.sa
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A review's answer, allowed or refused, is kept for the same token, verb
// and environment until its TTL passes: a page reloading every few seconds
// costs the API server no review, a new verb or environment or an expired
// answer is asked again, and a refusal stays a refusal.
func TestReviewsAreKeptBriefly(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	var counter reviewCounter
	cfg := rest.CopyConfig(testcluster.Config(t))
	cfg.Wrap(counter.wrap)
	clock := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	a := &Authorizer{Kube: kubernetes.NewForConfigOrDie(cfg), Namespace: ns, CacheTTL: 10 * time.Second,
		now: func() time.Time { return clock }}
	f := &fakeDaemon{}
	r := f.routes()
	r.Guard = a.Require
	srv := httptest.NewServer(New(r, Options{}))
	defer srv.Close()
	viewer := testcluster.ServiceAccountToken(t, cs, ns, "viewer", "get")

	const env = "/api/v1/apps/shop/environments/main"
	expect := func(what string, method, path, token string, code, tr, sa int) {
		t.Helper()
		if got, body := send(t, srv.URL, method, path, "", token); got != code {
			t.Fatalf("%s: %d %s, want %d", what, got, body, code)
		}
		if gtr, gsa := counter.counts(); gtr != tr || gsa != sa {
			t.Errorf("%s: %d token reviews and %d access reviews in all, want %d and %d", what, gtr, gsa, tr, sa)
		}
	}
	expect("first read", "GET", env, viewer, http.StatusOK, 1, 1)
	clock = clock.Add(9 * time.Second)
	expect("the same read within the TTL", "GET", env, viewer, http.StatusOK, 1, 1)
	expect("a refused pause", "POST", env+"/pause", viewer, http.StatusForbidden, 2, 2)
	expect("the same pause again", "POST", env+"/pause", viewer, http.StatusForbidden, 2, 2)
	expect("another environment (allowed; the daemon has none)", "GET", "/api/v1/apps/shop/environments/feature", viewer, http.StatusNotFound, 3, 3)
	clock = clock.Add(2 * time.Second)
	expect("the first read after its TTL", "GET", env, viewer, http.StatusOK, 4, 4)
	expect("a token that is not valid", "GET", env, "not-a-token", http.StatusUnauthorized, 5, 4)
	expect("the same token again", "GET", env, "not-a-token", http.StatusUnauthorized, 5, 4)

	a.CacheTTL = -1
	expect("with the cache off", "GET", env, viewer, http.StatusOK, 6, 5)
	expect("with the cache off, again", "GET", env, viewer, http.StatusOK, 7, 6)
}
