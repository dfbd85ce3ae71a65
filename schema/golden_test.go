package schema

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The golden tests load each case and compare its findings with CASE.golden.
//
//   - testdata/invalid/NAME.yaml: an inline .release.yaml with at least one error.
//   - testdata/warnings/NAME.yaml: valid, with at least one warning.
//   - testdata/strict/NAME.yaml: loaded with Strict; at least one error.
//   - testdata/valid/NAME.yaml: no findings at all.
//   - testdata/trees/NAME/: a whole repository tree (pointer form, env-vars
//     files, default paths, compose); its .golden says what it holds.
//
// Besides the golden file, every line carrying a "# want: TEXT" comment must
// have a finding at that line whose message contains TEXT, so each case
// asserts its message and line in the input itself.
func TestGolden(t *testing.T) {
	for _, dir := range []string{"invalid", "warnings", "strict", "valid"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no cases in testdata/%s", dir)
		}
		for _, file := range files {
			name := strings.TrimSuffix(filepath.Base(file), ".yaml")
			t.Run(dir+"/"+name, func(t *testing.T) {
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				fsys := fstest.MapFS{DefaultConfigFile: {Data: data}}
				opts := LoadOptions{Strict: dir == "strict"}
				_, findings := mustLoad(t, fsys, opts)
				checkKind(t, dir, findings)
				checkWants(t, fsys, findings)
				checkGolden(t, strings.TrimSuffix(file, ".yaml")+".golden", findings)
			})
		}
	}
}

func TestGoldenTrees(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "trees", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range dirs {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			continue
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			fsys := os.DirFS(dir)
			_, findings := mustLoad(t, fsys, LoadOptions{Parameters: map[string]string{"given": "x"}})
			checkWants(t, fsys, findings)
			checkGolden(t, dir+".golden", findings)
		})
	}
	if n == 0 {
		t.Fatal("no trees in testdata/trees")
	}
}

func mustLoad(t *testing.T, fsys fs.FS, opts LoadOptions) (*Config, Findings) {
	t.Helper()
	cfg, findings, err := Load(fsys, DefaultConfigFile, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg == nil || cfg.Template == nil || cfg.EnvVars == nil {
		t.Fatalf("Load returned an incomplete config")
	}
	for _, f := range findings {
		if f.File == "" {
			t.Errorf("finding without a file: %v", f)
		}
		if f.Line == 0 && !strings.Contains(f.Message, "empty") {
			t.Errorf("finding without a line: %v", f)
		}
	}
	return cfg, findings
}

func checkKind(t *testing.T, dir string, fs Findings) {
	t.Helper()
	switch dir {
	case "invalid", "strict":
		if !fs.HasErrors() {
			t.Errorf("want at least one error, got %v", fs)
		}
	case "warnings":
		if fs.HasErrors() || len(fs) == 0 {
			t.Errorf("want warnings only, got %v", fs)
		}
	case "valid":
		if len(fs) != 0 {
			t.Errorf("want no findings, got %v", fs)
		}
	}
}

var wantRE = regexp.MustCompile(`#\s*want:\s*(.+?)\s*$`)

// checkWants asserts each "# want: TEXT" comment: a finding at that file and
// line whose message contains TEXT.
func checkWants(t *testing.T, fsys fs.FS, findings Findings) {
	t.Helper()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for line := 1; sc.Scan(); line++ {
			m := wantRE.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			if !hasFinding(findings, p, line, m[1]) {
				t.Errorf("%s:%d: no finding containing %q; got:\n%s", p, line, m[1], format(findings))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func hasFinding(fs Findings, file string, line int, text string) bool {
	for _, f := range fs {
		if f.File == file && f.Line == line && strings.Contains(f.Message, text) {
			return true
		}
	}
	return false
}

func format(fs Findings) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintln(&b, f)
	}
	return b.String()
}

func checkGolden(t *testing.T, golden string, fs Findings) {
	t.Helper()
	got := format(fs)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./schema -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("findings differ from %s (run with -update to accept):\ngot:\n%swant:\n%s", golden, got, want)
	}
}
