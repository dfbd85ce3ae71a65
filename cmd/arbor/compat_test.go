//go:build compat

// The compat tests run over real users' Release repositories, which live
// outside this repository: `make test-compat` (go test -tags compat) runs
// them and fails when the files cannot be found. Without the tag they are not
// built; TestInitComposeFixtures covers the same code with the repository's
// own fixtures. See docs/testing.md.

package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/arbordev/arbor/internal/compat"
	"github.com/arbordev/arbor/schema"
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

// snapshotDefects are the corpus repositories that stay invalid whatever
// files are added: their own defect, or a configuration file the snapshot
// lacks (a stub template would prove nothing).
var snapshotDefects = map[string]string{
	"Rukio__nx-repo":                       "line 4 is not YAML (a redaction in the published file)",
	"Draiken__apache-php":                  ".release.yaml names .release/app.yml, which the snapshot lacks",
	"tmcclung__kafka-stack-docker-compose": ".release.yaml names full-stack.yml, which the snapshot lacks",
}

var missingRE = regexp.MustCompile(`^(\S+) does not exist in the repository$|^(\S+) has no Chart.yaml`)

// TestValidateCompatSnapshots validates every corpus repository after
// adding stubs for the files the snapshot lacks (configmap files, values
// files, chart directories): each must then be valid, but for
// snapshotDefects. This is the "valid but for the snapshot" column of
// docs/compatibility.md, checked.
func TestValidateCompatSnapshots(t *testing.T) {
	root := compat.Dir(t)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), e.Name())
			copyTree(t, filepath.Join(root, e.Name()), dir)
			var errs []string
			var charts []string // chart directories stubbed
			for pass := 0; pass < 4; pass++ {
				found, err := validateDir(dir, schema.LoadOptions{}, validateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				errs = errs[:0]
				stubbed := false
				for _, f := range found {
					if f.Severity != schema.SeverityError {
						continue
					}
					errs = append(errs, f.String())
					if stubSnapshotFile(t, dir, f, &charts) {
						stubbed = true
					}
				}
				if !stubbed {
					break
				}
			}
			why, defective := snapshotDefects[e.Name()]
			switch {
			case defective && len(errs) == 0:
				t.Errorf("valid, but listed as defective (%s)", why)
			case !defective && len(errs) > 0:
				t.Errorf("invalid with the snapshot's missing files stubbed:\n%s", strings.Join(errs, "\n"))
			}
		})
	}
}

var chartServiceRE = regexp.MustCompile(`no service named "([^"]+)", and no chart renders a Service of that name`)

// stubSnapshotFile adds what a "does not exist" finding names: a chart
// directory (Chart.yaml and an empty templates/) for a chart's directory,
// an empty YAML file otherwise; and, when a host names a Service no chart
// renders, that Service in the first stubbed chart (the snapshot lacks the
// real chart). It reports whether it added anything.
func stubSnapshotFile(t *testing.T, dir string, f schema.Finding, charts *[]string) bool {
	t.Helper()
	if m := chartServiceRE.FindStringSubmatch(f.Message); m != nil && len(*charts) > 0 {
		p := filepath.Join((*charts)[0], "templates", "stub-"+m[1]+".yaml")
		if _, err := os.Stat(p); err == nil {
			return false
		}
		writeFile(t, p, "apiVersion: v1\nkind: Service\nmetadata: {name: "+m[1]+"}\nspec: {ports: [{port: 80}]}\n")
		return true
	}
	m := missingRE.FindStringSubmatch(f.Message)
	if m == nil || strings.HasPrefix(f.Field, "application_template") || f.Field == "compose" {
		return false
	}
	rel := m[1] + m[2]
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if strings.HasSuffix(f.Field, ".directory") {
		writeFile(t, filepath.Join(p, "Chart.yaml"), "apiVersion: v2\nname: "+filepath.Base(filepath.Clean(p))+"\nversion: 0.1.0\n")
		*charts = append(*charts, p)
		return true
	}
	writeFile(t, p, "{}\n")
	return true
}
