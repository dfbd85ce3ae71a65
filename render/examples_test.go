package render

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/schema"
)

// loadExample loads an example app with the real loader.
func loadExample(t *testing.T, name string) (*schema.Config, string) {
	t.Helper()
	dir := filepath.Join("..", "examples", name)
	cfg, findings, err := schema.Load(os.DirFS(dir), schema.DefaultConfigFile, schema.LoadOptions{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if findings.HasErrors() {
		t.Fatalf("%s: %v", name, findings)
	}
	return cfg, dir
}

// TestExamplesRender renders every example for a sample branch, the
// storefront with the catalog imported.
func TestExamplesRender(t *testing.T) {
	forEachExample(t, "feature/sample", func(t *testing.T, env *Environment) {
		if len(env.Objects) < 4 || env.Objects[0].GetKind() != "Namespace" {
			t.Fatalf("%d objects, first %s", len(env.Objects), env.Objects[0].GetKind())
		}
		if len(env.Workflows["setup"].Steps) == 0 {
			t.Error("no setup steps")
		}
		for _, o := range env.Objects {
			if o.GetLabels()[LabelManagedBy] != ManagedByValue {
				t.Errorf("%s/%s lacks the managed-by label", o.GetKind(), o.GetName())
			}
		}
	})
}

// TestExamplesOnCluster sends every example's objects to the real API server
// (server-side dry run).
func TestExamplesOnCluster(t *testing.T) {
	forEachExample(t, testcluster.Name("examples"), serverDryRun)
}

func forEachExample(t *testing.T, branch string, check func(*testing.T, *Environment)) {
	entries, err := os.ReadDir(filepath.Join("..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			cfg, dir := loadExample(t, e.Name())
			in := Input{
				Config: cfg,
				Tree:   os.DirFS(dir),
				Context: Context{
					App: e.Name(), Branch: branch, Commit: "0123456789abcdef0123456789abcdef01234567",
					Domain: "preview.example.com", Secrets: map[string]string{"POSTGRES_PASSWORD": "sample"},
				},
			}
			for _, im := range cfg.Template.AppImports {
				icfg, idir := loadExample(t, im.Name)
				in.Imports = append(in.Imports, Import{App: im.Name, Branch: "main", Commit: "fedcba9876543210fedcba9876543210fedcba98", Config: icfg, Tree: os.DirFS(idir)})
			}
			env, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			check(t, env)
		})
	}
}

// TestCheckTemplates runs the validate-time render on the examples (all
// render) and on a broken configuration (one error per template).
func TestCheckTemplates(t *testing.T) {
	for _, name := range []string{"shop", "catalog", "kustomized", "storefront"} {
		cfg, dir := loadExample(t, name)
		if errs, _ := CheckTemplates(cfg, os.DirFS(dir), name, ""); len(errs) > 0 {
			t.Errorf("%s: %v", name, errs)
		}
	}
	cfg := configFrom(t, "environment_templates: [{name: qa}]\nservices: [{name: web, image: nginx, configmap: [{name: c, mount_path: /c, repo_path: nope}]}]", "")
	errs, _ := CheckTemplates(cfg, os.DirFS("testdata"), "demo", "")
	if len(errs) != 3 {
		t.Fatalf("got %d errors, want 3 (permanent, ephemeral, qa): %v", len(errs), errs)
	}
	want := `environment template qa: demo@arbor-validate/sample: services.web: configmap[0].repo_path "nope": no such file or directory in the repository`
	if errs[2].Error() != want {
		t.Errorf("got %q\nwant %q", errs[2], want)
	}
}
