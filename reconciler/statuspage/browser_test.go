package statuspage

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// chromiumPath finds Debian's chromium; `make test` installs it when missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: needs chromium (run `make test`)")
	}
	for _, p := range []string{os.Getenv("ARBOR_TEST_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("browser test needs chromium: `apt-get install -y chromium` (make test does it), or set ARBOR_TEST_CHROMIUM")
	return ""
}

// outputDir is <module root>/testoutput (gitignored), where tests keep artefacts.
func outputDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
	out := filepath.Join(dir, "testoutput")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// chromium runs headless chromium once with extra flags and the URL, returning stdout.
func chromium(t *testing.T, bin string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(args, extra...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("chromium timed out; stderr:\n%s", stderr.String())
		}
		t.Fatalf("chromium %v: %v; stderr:\n%s", extra, err, stderr.String())
	}
	return stdout.Bytes()
}

// TestBrowserRendersStatusPage loads the page in a real headless Chromium: the
// DOM after load must show the environments and an error with FILE:LINE, the
// browser must fetch nothing but the page, and a screenshot is kept in
// testoutput/statuspage.png.
func TestBrowserRendersStatusPage(t *testing.T) {
	bin := chromiumPath(t)
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

	dom := string(chromium(t, bin, "--dump-dom", srv.URL+"/"))
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

	shot := filepath.Join(outputDir(t), "statuspage.png")
	_ = os.Remove(shot)
	chromium(t, bin, "--screenshot="+shot, "--window-size=1440,900", srv.URL+"/")
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10_000 {
		t.Fatalf("screenshot %s is not a plausible PNG (%d bytes)", shot, len(png))
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	mu.Lock()
	defer mu.Unlock()
	for _, p := range paths {
		if p != "/" && p != "/favicon.ico" {
			t.Errorf("the browser requested %s: the page must load no assets", p)
		}
	}
}
