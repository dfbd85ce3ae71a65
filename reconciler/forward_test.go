package reconciler

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// forwardFleet is a Fleet whose replica "me" knows app "a", acts on it
// only when acting, and sees "peer" own it at addr.
func forwardFleet(addr string, acting bool) *Fleet {
	r := &Reconciler{apps: map[string]*appRunner{"a": {}}}
	s := newShards(ShardOptions{Identity: "me", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, &ownership{apps: map[string]*claim{}}, []string{"a"}, func(string) {})
	r.owner, r.shard = s.own, s
	if acting {
		r.leading.Store(true)
		s.own.apps["a"] = &claim{}
	}
	owners := map[string]string{"a": "peer"}
	addrs := map[string]string{"peer": addr}
	s.owners.Store(&owners)
	s.addrs.Store(&addrs)
	f := &Fleet{home: r, members: []*Reconciler{r}}
	f.shard.Store(s)
	return f
}

// local is the daemon's own handler in these tests: it echoes the body.
var local = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	_, _ = w.Write(append([]byte("local:"), b...))
})

func TestForwardPassesAppRequestsToTheOwnerOnce(t *testing.T) {
	var got *http.Request
	var gotBody string
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set(ServedByHeader, "peer")
		_, _ = w.Write([]byte("owner"))
	}))
	defer owner.Close()
	h := forwardFleet(strings.TrimPrefix(owner.URL, "http://"), false).Forward(local)

	req := httptest.NewRequest(http.MethodPost, "http://arbor.example.com/api/v1/apps/a/environments/main/extend", strings.NewReader(`{"duration":"1h"}`))
	req.Header.Set("Authorization", "Bearer t0ken")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Body.String() != "owner" || got == nil {
		t.Fatalf("answer %q; want the owner's", rec.Body.String())
	}
	if got.Host != "arbor.example.com" {
		t.Errorf("the owner got Host %q, not the caller's (its guard compares an Origin with it)", got.Host)
	}
	if got.Header.Get("Authorization") != "Bearer t0ken" || got.Header.Get(ForwardedHeader) != "me" || gotBody != `{"duration":"1h"}` || got.URL.Path != "/api/v1/apps/a/environments/main/extend" {
		t.Errorf("the owner got %s %s, Authorization %q, %s %q, body %q", got.Method, got.URL.Path, got.Header.Get("Authorization"), ForwardedHeader, got.Header.Get(ForwardedHeader), gotBody)
	}
	if v := rec.Header().Values(ServedByHeader); len(v) != 1 || v[0] != "peer" {
		t.Errorf("%s: %v; want the owner alone", ServedByHeader, v)
	}

	// Already passed on once, another app's path, or the list of apps:
	// answered here.
	for _, path := range []string{"/api/v1/apps/a/environments", "/api/v1/apps/b/environments", "/api/v1/apps", "/"} {
		got = nil
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if path == "/api/v1/apps/a/environments" {
			req.Header.Set(ForwardedHeader, "peer")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got != nil || !strings.HasPrefix(rec.Body.String(), "local:") {
			t.Errorf("GET %s (%s %q) was passed on", path, ForwardedHeader, req.Header.Get(ForwardedHeader))
		}
	}

	// The replica acting on the app answers itself.
	got = nil
	rec = httptest.NewRecorder()
	forwardFleet(strings.TrimPrefix(owner.URL, "http://"), true).Forward(local).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/apps/a/environments", nil))
	if got != nil || rec.Header().Get(ServedByHeader) != "me" {
		t.Errorf("the owner passed on a request for its own app (served by %q)", rec.Header().Get(ServedByHeader))
	}
}

// An owner that cannot be reached: the replica answers from its records,
// with the request's body intact, and says why.
func TestForwardFallsBackWhenTheOwnerIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	// An owner that reads the request and hangs up without answering.
	rude := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	defer rude.Close()
	for _, c := range []struct{ method, addr string }{
		{http.MethodPost, addr}, {http.MethodPost, ""}, {http.MethodGet, strings.TrimPrefix(rude.URL, "http://")},
	} {
		rec := httptest.NewRecorder()
		forwardFleet(c.addr, false).Forward(local).ServeHTTP(rec, httptest.NewRequest(c.method, "/api/v1/apps/a/environments/main/extend", strings.NewReader("body")))
		if rec.Body.String() != "local:body" || rec.Header().Get(OwnerUnreachableHeader) == "" || rec.Header().Get(ServedByHeader) != "me" {
			t.Errorf("%s, owner at %q: answer %q, %s %q, served by %q; want the local answer with the body, saying why", c.method, c.addr, rec.Body.String(), OwnerUnreachableHeader, rec.Header().Get(OwnerUnreachableHeader), rec.Header().Get(ServedByHeader))
		}
	}
	// An action the owner may have done before hanging up is not done
	// again here: 502, saying so.
	rec := httptest.NewRecorder()
	forwardFleet(strings.TrimPrefix(rude.URL, "http://"), false).Forward(local).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/apps/a/environments/main/deploy", strings.NewReader("body")))
	if rec.Code != http.StatusBadGateway || strings.HasPrefix(rec.Body.String(), "local:") {
		t.Errorf("a deploy the owner hung up on: %d %q; want 502, not done here", rec.Code, rec.Body.String())
	}
}
