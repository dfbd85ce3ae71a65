package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRoutes: the status codes the server owns, whatever the daemon
// behind it says.
func TestRoutes(t *testing.T) {
	deployed := 0
	deploy := func(_ context.Context, app, env string) (any, error) {
		if env != "main" {
			return nil, fmt.Errorf("app %s has no environment %s: %w", app, env, ErrNotFound)
		}
		deployed++
		return map[string]string{"env": env}, nil
	}
	allow := func(_ string, h http.Handler) http.Handler { return h }
	open := Routes{
		Apps:         func() any { return []string{"shop"} },
		Environments: func(app string) (any, bool) { return []string{}, app == "shop" },
		Ready:        func() bool { return false },
		Deploy:       deploy,
		Guard:        allow,
	}
	closed := open
	closed.Guard = nil
	cases := []struct {
		name   string
		routes Routes
		method string
		path   string
		want   int
	}{
		{"apps", open, "GET", "/api/v1/apps", http.StatusOK},
		{"known app", open, "GET", "/api/v1/apps/shop/environments", http.StatusOK},
		{"unknown app", open, "GET", "/api/v1/apps/blog/environments", http.StatusNotFound},
		{"not ready", open, "GET", "/readyz", http.StatusServiceUnavailable},
		{"healthy", open, "GET", "/healthz", http.StatusOK},
		{"deploy", open, "POST", "/api/v1/apps/shop/environments/main/deploy", http.StatusAccepted},
		{"deploy of nothing", open, "POST", "/api/v1/apps/shop/environments/gone/deploy", http.StatusNotFound},
		{"deploy by GET", open, "GET", "/api/v1/apps/shop/environments/main/deploy", http.StatusMethodNotAllowed},
		{"no guard", closed, "POST", "/api/v1/apps/shop/environments/main/deploy", http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := deployed
			rec := httptest.NewRecorder()
			New(c.routes, Options{}).ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
			if rec.Code != c.want {
				t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, rec.Code, c.want, rec.Body)
			}
			if changed := deployed != before; changed != (c.want == http.StatusAccepted) {
				t.Errorf("%s %s: deploy requested=%v with status %d", c.method, c.path, changed, rec.Code)
			}
		})
	}
}
