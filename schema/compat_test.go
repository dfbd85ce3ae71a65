//go:build compat

// TestLoadCompat runs over real users' Release repositories, which live
// outside this repository: `make test-compat` (go test -tags compat) runs it
// and fails when the files cannot be found. Without the tag it is not built;
// TestGoldenTrees covers the same loading code with the repository's own
// trees (testdata/trees). See docs/testing.md.

package schema

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/arbordev/arbor/internal/compat"
)

// TestLoadCompat loads every real Release configuration: no panic, no I/O
// error, and a configuration for each (the findings are logged, and recorded
// in docs/compatibility.md).
func TestLoadCompat(t *testing.T) {
	dir := compat.Dir(t)
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
