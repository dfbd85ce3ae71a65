package render

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	kyaml "sigs.k8s.io/yaml"

	"github.com/arbordev/arbor/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// caseContext is context.yaml of a test case: the Context and the imports.
type caseContext struct {
	App                    string            `yaml:"app"`
	Branch                 string            `yaml:"branch"`
	Commit                 string            `yaml:"commit"`
	Template               string            `yaml:"template"`
	DefaultBranch          string            `yaml:"default_branch"`
	Domain                 string            `yaml:"domain"`
	IngressClass           string            `yaml:"ingress_class"`
	Parameters             map[string]string `yaml:"parameters"`
	Registry               string            `yaml:"registry"`
	Tag                    string            `yaml:"tag"`
	StorageClasses         map[string]string `yaml:"storage_classes"`
	Secrets                map[string]string `yaml:"secrets"`
	AllowClusterScoped     bool              `yaml:"allow_cluster_scoped"`
	AllowForeignNamespaces bool              `yaml:"allow_foreign_namespaces"`
	KubeVersion            string            `yaml:"kube_version"`
	APIVersions            []string          `yaml:"api_versions"`
	SkipRemoteCharts       bool              `yaml:"skip_remote_charts"`
	Imports                []struct {
		App     string            `yaml:"app"`
		Branch  string            `yaml:"branch"`
		Commit  string            `yaml:"commit"`
		Dir     string            `yaml:"dir"`
		Exclude []string          `yaml:"exclude"`
		Params  map[string]string `yaml:"parameters"`
	} `yaml:"imports"`
}

// loadConfig reads template.yaml and env.yaml (optional) of a directory.
func loadConfig(t testing.TB, dir string) *schema.Config {
	t.Helper()
	cfg := &schema.Config{Form: schema.FormPointer, TemplateFile: "template.yaml", Template: &schema.Template{}, EnvVars: &schema.EnvVars{}}
	b, err := os.ReadFile(filepath.Join(dir, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, cfg.Template); err != nil {
		t.Fatalf("%s/template.yaml: %v", dir, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "env.yaml")); err == nil {
		if err := yaml.Unmarshal(b, cfg.EnvVars); err != nil {
			t.Fatalf("%s/env.yaml: %v", dir, err)
		}
	}
	return cfg
}

// loadCase builds the Input of a test case directory.
func loadCase(t testing.TB, dir string) Input {
	t.Helper()
	cc := caseContext{App: "demo", Branch: "feature/login", Commit: "0123456789abcdef0123456789abcdef01234567", Domain: "preview.example.com"}
	if b, err := os.ReadFile(filepath.Join(dir, "context.yaml")); err == nil {
		if err := yaml.Unmarshal(b, &cc); err != nil {
			t.Fatalf("%s/context.yaml: %v", dir, err)
		}
	}
	in := Input{
		Config: loadConfig(t, dir),
		Tree:   os.DirFS(dir),
		Context: Context{
			App: cc.App, Branch: cc.Branch, Commit: cc.Commit, EnvironmentTemplate: cc.Template,
			DefaultBranch: cc.DefaultBranch, Domain: cc.Domain, IngressClass: cc.IngressClass,
			Parameters: cc.Parameters, Image: ImageSettings{Registry: cc.Registry, Tag: cc.Tag},
			StorageClasses: cc.StorageClasses, Secrets: cc.Secrets,
			AllowClusterScoped: cc.AllowClusterScoped, AllowForeignNamespaces: cc.AllowForeignNamespaces,
			Charts: ChartOptions{KubeVersion: cc.KubeVersion, APIVersions: cc.APIVersions, SkipRemote: cc.SkipRemoteCharts},
		},
	}
	for _, im := range cc.Imports {
		d := filepath.Join(dir, im.Dir)
		in.Imports = append(in.Imports, Import{
			App: im.App, Branch: im.Branch, Commit: im.Commit, Config: loadConfig(t, d),
			Tree: os.DirFS(d), ExcludeServices: im.Exclude, Parameters: im.Params,
		})
	}
	return in
}

// summary is the golden form of an Environment besides its objects.
type summary struct {
	App          string                 `json:"app"`
	Branch       string                 `json:"branch"`
	Commit       string                 `json:"commit"`
	EnvID        string                 `json:"envID"`
	Namespace    string                 `json:"namespace"`
	Template     string                 `json:"template"`
	ExpiresAfter string                 `json:"expiresAfter,omitempty"`
	AutoDeploy   bool                   `json:"autoDeploy"`
	URLs         []URL                  `json:"urls,omitempty"`
	Links        []schema.Link          `json:"links,omitempty"`
	Workflows    []Workflow             `json:"workflows"`
	Tasks        map[string][]ObjectRef `json:"tasks"`
	HaltOnError  map[string]bool        `json:"haltOnError,omitempty"`
	Parallel     bool                   `json:"parallelizeAppImports,omitempty"`
	Warnings     []string               `json:"warnings,omitempty"`
	Hooks        []goldenHook           `json:"hooks,omitempty"`
}

// goldenHook is a Hook as the golden files show it.
type goldenHook struct {
	Task           string         `json:"task"`
	Phase          HookPhase      `json:"phase"`
	Events         []string       `json:"events"`
	Weight         int            `json:"weight,omitempty"`
	DeletePolicies []string       `json:"deletePolicies,omitempty"`
	Object         map[string]any `json:"object"`
}

func goldenText(t testing.TB, env *Environment) []byte {
	s := summary{
		App: env.App, Branch: env.Branch, Commit: env.Commit, EnvID: env.EnvID, Namespace: env.Namespace,
		Template: env.Template, ExpiresAfter: env.ExpiresAfter, AutoDeploy: env.AutoDeploy,
		URLs: env.URLs, Links: env.Links, Tasks: env.Tasks, HaltOnError: env.HaltOnError,
		Parallel: env.ParallelizeAppImports, Warnings: env.Warnings,
	}
	for _, h := range env.Hooks {
		s.Hooks = append(s.Hooks, goldenHook{Task: h.Task, Phase: h.Phase, Events: h.Events, Weight: h.Weight, DeletePolicies: h.DeletePolicies, Object: h.Object.Object})
	}
	names := sortedKeys(env.Workflows)
	for _, n := range names {
		s.Workflows = append(s.Workflows, env.Workflows[n])
	}
	var buf bytes.Buffer
	b, err := kyaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	buf.WriteString("# Environment\n")
	buf.Write(b)
	for _, o := range env.Objects {
		b, err := kyaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes()
}

func compareGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./render -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the render:\n%s", file, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first differing lines, enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s", i+1, a, b)
		}
	}
	return "(same lines)"
}

func caseDirs(t *testing.T, root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	sort.Strings(dirs)
	return dirs
}

// TestGolden renders each directory of testdata/golden and compares the
// result with its expected.yaml.
func TestGolden(t *testing.T) {
	for _, name := range caseDirs(t, "testdata/golden") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata/golden", name)
			in := loadCase(t, dir)
			env, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			got := goldenText(t, env)
			compareGolden(t, filepath.Join(dir, "expected.yaml"), got)
			again, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, goldenText(t, again)) {
				t.Error("a second render of the same input differs")
			}
		})
	}
}

// TestErrors renders each directory of testdata/errors and compares the
// error with its error.txt.
func TestErrors(t *testing.T) {
	for _, name := range caseDirs(t, "testdata/errors") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata/errors", name)
			_, err := Render(loadCase(t, dir))
			if err == nil {
				t.Fatal("render succeeded; want an error")
			}
			compareGolden(t, filepath.Join(dir, "error.txt"), []byte(err.Error()+"\n"))
		})
	}
}
