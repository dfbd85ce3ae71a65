// Package browser drives Debian's headless Chromium from tests: it loads a
// page and returns the DOM the browser built, or a screenshot, using
// Chromium's own --dump-dom and --screenshot flags (no DevTools client, no
// extra dependency). `make test` installs chromium when it is missing.
//
// Under `go test -short` the helpers skip; otherwise a missing browser fails
// the test, so that CI never passes by skipping.
package browser

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// EnvChromium names a variable that overrides the browser's path.
const EnvChromium = "ARBOR_TEST_CHROMIUM"

// Path returns the chromium binary, failing t when there is none.
func Path(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: needs chromium (run `make test`)")
	}
	for _, p := range []string{os.Getenv(EnvChromium), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("browser test needs chromium: `apt-get install -y chromium` (make test does it), or set %s", EnvChromium)
	return ""
}

// run starts headless chromium once with extra arguments and returns stdout.
func run(t testing.TB, extra ...string) []byte {
	t.Helper()
	bin := Path(t)
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

// DOM loads url and returns the document as the browser serialized it after loading.
func DOM(t testing.TB, url string) string {
	t.Helper()
	return string(run(t, "--dump-dom", url))
}

// Screenshot loads url in a 1440×900 window and saves a PNG as name in
// OutputDir, returning its path. It fails t unless a plausible PNG was written.
func Screenshot(t testing.TB, url, name string) string {
	t.Helper()
	path := filepath.Join(OutputDir(t), name)
	_ = os.Remove(path)
	run(t, "--screenshot="+path, "--window-size=1440,900", url)
	png, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10_000 {
		t.Fatalf("screenshot %s is not a plausible PNG (%d bytes)", path, len(png))
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return path
}

// OutputDir is <module root>/testoutput (gitignored), where tests keep artefacts.
func OutputDir(t testing.TB) string {
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
