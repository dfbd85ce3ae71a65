package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWakeHandler: the waking endpoint asks the daemon about the request's
// Host for GET and HEAD only, answers 404 for an unknown host, 503 with a
// reloading page otherwise, and serves that page on every path (nothing of
// the main listener is mounted there).
func TestWakeHandler(t *testing.T) {
	var asked []string
	h := WakeHandler(func(_ context.Context, host string) (WakeState, error) {
		asked = append(asked, host)
		switch host {
		case "paused.example":
			return WakeWaking, nil
		case "resumed.example":
			return WakeAwake, nil
		case "failing.example":
			return WakeWaking, errors.New("the API server is away")
		}
		return WakeUnknown, nil
	}, Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, c := range []struct {
		method, host, path string
		code               int
		body               string
	}{
		{"GET", "paused.example", "/", 503, "Waking up"},
		{"GET", "paused.example", "/api/v1/apps", 503, `http-equiv="refresh"`},
		{"GET", "paused.example", "/metrics", 503, "Waking up"},
		{"HEAD", "paused.example", "/", 503, ""},
		{"GET", "resumed.example", "/", 503, "Ready"},
		{"GET", "failing.example", "/", 503, "could not be recorded"},
		{"GET", "other.example", "/", 404, "no paused environment"},
		{"POST", "paused.example", "/", 405, ""},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		req.Host = c.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(body), c.body) {
			t.Errorf("%s %s%s: %d %q, want %d with %q", c.method, c.host, c.path, resp.StatusCode, body, c.code, c.body)
		}
		if c.code == 503 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: no Retry-After", c.method, c.host)
		}
	}
	for _, h := range asked {
		if h == "paused.example" {
			continue
		}
		if h != "resumed.example" && h != "failing.example" && h != "other.example" {
			t.Errorf("asked about %q", h)
		}
	}
	if len(asked) != 7 {
		t.Errorf("the daemon was asked %d times (%v), want 7: never for a POST", len(asked), asked)
	}
}
