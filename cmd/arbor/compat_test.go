//go:build compat

// The compat tests run over real users' Release repositories, which live
// outside this repository: `make test-compat` (go test -tags compat) runs
// them and fails when the files cannot be found. Without the tag they are not
// built; TestInitComposeFixtures covers the same code with the repository's
// own fixtures. See docs/testing.md.

package main

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arbordev/arbor/internal/compat"
)

// TestInitCompatComposeFiles runs init on every compose file among the real
// Release repositories (copied into a temporary directory at test time) and
// checks that the result validates.
func TestInitCompatComposeFiles(t *testing.T) {
	root := compat.Dir(t)
	var composeFiles []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if !d.IsDir() && strings.Contains(name, "compose") || name == "full-stack.yml" {
			composeFiles = append(composeFiles, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(composeFiles) == 0 {
		t.Fatal("no compose files found")
	}
	for _, file := range composeFiles {
		rel, _ := filepath.Rel(root, file)
		t.Run(rel, func(t *testing.T) {
			repo := strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]
			dir := filepath.Join(t.TempDir(), repo)
			copyTree(t, filepath.Join(root, repo), dir)
			initValidates(t, dir, filepath.Join(dir, strings.TrimPrefix(filepath.ToSlash(rel), repo+"/")))
		})
	}
}
