package schema

import (
	"os"
	"path/filepath"
	"testing"
)

// compatDir is where real users' Release files are: $ARBOR_COMPAT_DIR, else
// shared/compat/release-templates beside the repository or one of its parent
// directories. It lies outside the repository, so a clean clone may not have
// it: the test is skipped then, saying so.
func compatDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("ARBOR_COMPAT_DIR"); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("ARBOR_COMPAT_DIR: %v", err)
		}
		return dir
	}
	// The repository root is "..": look for shared/ beside it, or beside one
	// of its parents (a git worktree may sit deeper).
	up := ".."
	for i := 0; i < 3; i++ {
		up = filepath.Join(up, "..")
		dir := filepath.Join(up, "shared", "compat", "release-templates")
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
	}
	t.Skip("compat templates not found beside the repository (../shared/compat/release-templates); set ARBOR_COMPAT_DIR to run this test")
	return ""
}

// TestLoadCompat loads every real Release configuration: no panic, no I/O
// error, and a configuration for each (the findings are logged, and recorded
// in docs/compatibility.md).
func TestLoadCompat(t *testing.T) {
	dir := compatDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			cfg, fs, err := Load(os.DirFS(filepath.Join(dir, e.Name())), DefaultConfigFile, LoadOptions{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg == nil || cfg.Template == nil || cfg.EnvVars == nil {
				t.Fatalf("Load returned an incomplete config: %+v", cfg)
			}
			if cfg.Hash == "" {
				t.Error("empty hash")
			}
			for _, f := range fs {
				t.Log(f)
			}
		})
	}
	if n == 0 {
		t.Fatalf("no repositories in %s", dir)
	}
}
