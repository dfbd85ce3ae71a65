package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeDaemon records what the actions were asked.
type fakeDaemon struct {
	calls []string
}

func (f *fakeDaemon) routes() Routes {
	known := func(app, env string) error {
		if app != "shop" || env != "main" {
			return fmt.Errorf("app %s has no environment %s: %w", app, env, ErrNotFound)
		}
		return nil
	}
	return Routes{
		Environment: func(app, env string) (any, error) {
			return map[string]string{"branch": env}, known(app, env)
		},
		Pause: func(_ context.Context, app, env string, paused bool) (any, error) {
			if err := known(app, env); err != nil {
				return nil, err
			}
			f.calls = append(f.calls, fmt.Sprintf("pause=%v", paused))
			return map[string]bool{"paused": paused}, nil
		},
		Extend: func(_ context.Context, app, env string, by time.Duration) (any, error) {
			if err := known(app, env); err != nil {
				return nil, err
			}
			if by > 7*24*time.Hour {
				return nil, fmt.Errorf("%w: at most 7d", ErrInvalid)
			}
			f.calls = append(f.calls, "extend="+by.String())
			return map[string]string{"by": by.String()}, nil
		},
		Delete: func(_ context.Context, app, env string) (any, error) {
			if err := known(app, env); err != nil {
				return nil, err
			}
			f.calls = append(f.calls, "delete")
			return map[string]string{"deleted": env}, nil
		},
		Logs: func(_ context.Context, app, env string, q LogQuery, w io.Writer) error {
			if err := known(app, env); err != nil {
				return err
			}
			if q.Kind == LogBuild {
				return fmt.Errorf("no build logs for %s/%s: %w", app, env, ErrNotFound)
			}
			f.calls = append(f.calls, fmt.Sprintf("logs %s/%s tail=%d", q.Kind, q.Name, q.Tail))
			_, err := io.WriteString(w, strings.Repeat("line\n", 1000))
			return err
		},
		Guard: func(_ string, h http.Handler) http.Handler { return h },
	}
}

// TestActionRoutes: each action's path, method, body checks and status
// codes, and whether the daemon was asked.
func TestActionRoutes(t *testing.T) {
	const env = "/api/v1/apps/shop/environments/main"
	cases := []struct {
		method, path, body string
		want               int
		call               string
	}{
		{"GET", env, "", http.StatusOK, ""},
		{"GET", "/api/v1/apps/shop/environments/gone", "", http.StatusNotFound, ""},
		{"POST", env + "/pause", "", http.StatusAccepted, "pause=true"},
		{"POST", env + "/resume", "", http.StatusAccepted, "pause=false"},
		{"GET", env + "/pause", "", http.StatusMethodNotAllowed, ""},
		{"POST", "/api/v1/apps/shop/environments/gone/pause", "", http.StatusNotFound, ""},
		{"POST", env + "/extend", `{"duration":"36h"}`, http.StatusAccepted, "extend=36h0m0s"},
		{"POST", env + "/extend", `{"duration":"3d"}`, http.StatusAccepted, "extend=72h0m0s"},
		{"POST", env + "/extend", `{"duration":"30d"}`, http.StatusBadRequest, ""},
		{"POST", env + "/extend", `{"duration":"-1h"}`, http.StatusBadRequest, ""},
		{"POST", env + "/extend", `{"until":"tomorrow"}`, http.StatusBadRequest, ""},
		{"POST", env + "/extend", ``, http.StatusBadRequest, ""},
		{"DELETE", env, "", http.StatusAccepted, "delete"},
		{"DELETE", "/api/v1/apps/shop/environments/gone", "", http.StatusNotFound, ""},
		{"GET", env + "/logs/services/web?tail=5", "", http.StatusOK, "logs service/web tail=5"},
		{"GET", env + "/logs/jobs/migrate", "", http.StatusOK, "logs job/migrate tail=200"},
		{"GET", env + "/logs/workflow", "", http.StatusOK, "logs workflow/ tail=200"},
		{"GET", env + "/logs/build", "", http.StatusNotFound, ""},
		{"GET", env + "/logs/services/web?tail=0", "", http.StatusBadRequest, ""},
		{"GET", env + "/logs/services/web?limitBytes=999999999", "", http.StatusBadRequest, ""},
		{"GET", env + "/logs/services/web?follow=maybe", "", http.StatusBadRequest, ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path+" "+c.body, func(t *testing.T) {
			f := &fakeDaemon{}
			rec := httptest.NewRecorder()
			New(f.routes(), Options{}).ServeHTTP(rec, httptest.NewRequest(c.method, c.path, strings.NewReader(c.body)))
			if rec.Code != c.want {
				t.Errorf("%d, want %d: %s", rec.Code, c.want, rec.Body)
			}
			got := strings.Join(f.calls, ",")
			if got != c.call {
				t.Errorf("the daemon was asked %q, want %q", got, c.call)
			}
		})
	}
}

// TestLogsAreBounded: the answer stops at limitBytes whatever the daemon writes.
func TestLogsAreBounded(t *testing.T) {
	f := &fakeDaemon{}
	rec := httptest.NewRecorder()
	New(f.routes(), Options{}).ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/apps/shop/environments/main/logs/services/web?limitBytes=12", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "line\nline\nli" {
		t.Fatalf("%d %q, want the first 12 bytes", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
}

// TestReadsNeedGuardUnlessOpen: the page and the read API pass the Guard
// (verbs list and get) unless OpenReads; without a Guard they are refused.
func TestReadsNeedGuardUnlessOpen(t *testing.T) {
	f := &fakeDaemon{}
	var verbs []string
	r := f.routes()
	r.Page = fixtureSource()
	r.Apps = func() any { return []string{"shop"} }
	r.Environments = func(string) (any, bool) { return []string{}, true }
	r.Guard = func(verb string, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			verbs = append(verbs, verb)
			http.Error(w, "no", http.StatusForbidden)
		})
	}
	paths := []string{"/", "/api/v1/apps", "/api/v1/apps/shop/environments", "/api/v1/apps/shop/environments/main"}
	for _, open := range []bool{false, true} {
		r.OpenReads = open
		verbs = nil
		h := New(r, Options{})
		for _, p := range paths {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
			if want := map[bool]int{false: http.StatusForbidden, true: http.StatusOK}[open]; rec.Code != want {
				t.Errorf("open=%v GET %s: %d, want %d", open, p, rec.Code, want)
			}
		}
		want := "list,list,list,get"
		if open {
			want = ""
		}
		if got := strings.Join(verbs, ","); got != want {
			t.Errorf("open=%v: verbs checked %q, want %q", open, got, want)
		}
	}
	r.Guard, r.OpenReads = nil, false
	rec := httptest.NewRecorder()
	New(r, Options{}).ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/apps", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("no guard, reads not open: %d, want 401", rec.Code)
	}
}

// TestFollowedLogsStream: a followed log reaches the client as it is
// written, before the daemon's writer returns, and ends when the client goes.
func TestFollowedLogsStream(t *testing.T) {
	ended := make(chan error, 1)
	r := Routes{
		Guard: func(_ string, h http.Handler) http.Handler { return h },
		Logs: func(ctx context.Context, _, _ string, q LogQuery, w io.Writer) error {
			if !q.Follow {
				return fmt.Errorf("%w: want follow", ErrInvalid)
			}
			if _, err := io.WriteString(w, "first\n"); err != nil {
				return err
			}
			<-ctx.Done() // a log that grows no more until the client leaves
			ended <- ctx.Err()
			return nil
		},
	}
	srv := httptest.NewServer(New(r, Options{}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	read := make(chan string, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/apps/a/environments/e/logs/services/web?follow=true", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			read <- err.Error()
			return
		}
		defer resp.Body.Close()
		line := make([]byte, len("first\n"))
		_, _ = io.ReadFull(resp.Body, line)
		read <- string(line)
	}()
	select {
	case line := <-read:
		if line != "first\n" {
			t.Fatalf("first line while the log is followed: %q", line)
		}
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("the first line did not reach the client while the log was followed (not flushed)")
	}
	cancel()
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon's log copy did not end when the client went")
	}
}
