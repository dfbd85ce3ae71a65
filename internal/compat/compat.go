// Package compat finds the corpus of real users' Release repositories that
// the compat tests (build tag compat, `make test-compat`) run over. The
// corpus lives outside this repository and is never copied into it.
package compat

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the corpus directory: $ARBOR_COMPAT_DIR, else
// shared/compat/release-templates beside the repository or beside one of its
// parent directories (a git worktree may sit deeper). A missing corpus fails
// the test: a compat test that checked nothing must not pass.
func Dir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("ARBOR_COMPAT_DIR"); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("ARBOR_COMPAT_DIR: %v", err)
		}
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		corpus := filepath.Join(dir, "shared", "compat", "release-templates")
		if _, err := os.Stat(corpus); err == nil {
			return corpus
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	t.Fatalf("the compat corpus (shared/compat/release-templates beside the repository) is not here; set ARBOR_COMPAT_DIR, or run the tests without -tags compat")
	return ""
}
