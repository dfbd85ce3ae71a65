package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/browser"
)

// TestBrowserRendersStatusPage loads the page in a real headless Chromium: the
// DOM after load must show the environments and an error with FILE:LINE, the
// browser must fetch nothing but the page, and a screenshot is kept in
// testoutput/statuspage.png.
func TestBrowserRendersStatusPage(t *testing.T) {
	browser.Path(t)
	var mu sync.Mutex
	var paths []string
	page := Handler(fixtureSource(), Options{Now: func() time.Time { return testNow }, Refresh: 30 * time.Second})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		page.ServeHTTP(w, r)
	}))
	defer srv.Close()

	dom := browser.DOM(t, srv.URL+"/")
	for _, want := range []string{
		"<h2>shop", "main", "feature/checkout-v2", "broken-template", "9b8c7d6",
		"Progressing", "setup 1/3",
		"<code>.release/application_template.yaml:14:7</code>: services[1].ports[0].port: 70000 is not a port",
		"listing branches: dial tcp 10.0.0.7:443",
		`http-equiv="refresh" content="30"`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM Chromium built lacks %q", want)
		}
	}
	if strings.Contains(dom, "s3cr3t-t0ken") {
		t.Error("the DOM shows a credential from the repository URL")
	}

	browser.Screenshot(t, srv.URL+"/", "statuspage.png")

	mu.Lock()
	defer mu.Unlock()
	for _, p := range paths {
		if p != "/" && p != "/favicon.ico" {
			t.Errorf("the browser requested %s: the page must load no assets", p)
		}
	}
}
