package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arbordev/arbor/internal/buildkittest"
	"github.com/arbordev/arbor/internal/gittest"
)

// TestBuildCommand builds a branch's two images with the real buildkitd
// into the real registry, pinned by digest; a second run finds both and
// builds nothing; a broken Dockerfile fails naming its step.
func TestBuildCommand(t *testing.T) {
	addr := buildkittest.Addr(t)
	reg := buildkittest.Registry(t)
	prefix := reg + "/" + buildkittest.Repository(t)
	dir := t.TempDir()
	files := map[string]string{
		".release.yaml":  "app: shop\nservices:\n- {name: api, build: {context: api}}\n- {name: web, build: web}\n- {name: db, image: postgres:16}\n",
		"api/Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n", "api/a.txt": "api\n",
		"web/Dockerfile": "FROM scratch\nCOPY w.txt /w.txt\n", "web/w.txt": "web\n",
	}
	commit := func(files map[string]string) {
		for p, c := range files {
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		gittest.Run(t, dir, "add", "-A")
		gittest.Run(t, dir, "commit", "-q", "-m", "change")
	}
	gittest.Run(t, dir, "init", "-q", "-b", "main")
	commit(files)
	gittest.Run(t, dir, "checkout", "-q", "-b", "feature")

	args := []string{"build", dir, "--branch", "feature", "--buildkit-addr", addr, "--registry", prefix, "--plain-http"}
	out, errOut, code := runArbor(t, args...)
	if code != 0 {
		t.Fatalf("arbor build: exit %d\n%s%s", code, out, errOut)
	}
	for _, svc := range []string{"api", "web"} {
		if !strings.Contains(out, prefix+"/shop/"+svc+"@sha256:") {
			t.Errorf("output names no pinned image of %s under %s:\n%s", svc, prefix, out)
		}
	}
	t.Logf("first run:\n%s", out)
	if strings.Count(out, " yes ") != 2 || strings.Contains(out, "\ndb ") {
		t.Errorf("want api and web built, db (not built from the repository) absent:\n%s", out)
	}

	out, errOut, code = runArbor(t, args...)
	if code != 0 || strings.Count(out, "no (found)") != 2 {
		t.Errorf("second run: exit %d, want both images found and none built:\n%s%s", code, out, errOut)
	}

	commit(map[string]string{"web/Dockerfile": "FROM scratch\nCOPY missing.txt /m.txt\n"})
	out, errOut, code = runArbor(t, args...)
	if code == 0 || !strings.Contains(errOut, "services.web") || !strings.Contains(errOut, "COPY missing.txt") {
		t.Errorf("broken Dockerfile: exit %d, want a failure naming web's failing step:\n%s%s", code, out, errOut)
	}
}
