package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/arbordev/arbor/schema"
)

// FuzzRender decodes arbitrary templates and env-vars documents and renders
// them: Render must return an environment or an error, never panic (a
// recovered panic shows as "internal error").
func FuzzRender(f *testing.F) {
	for _, dir := range []string{"testdata/golden", "testdata/errors"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			tmpl, _ := os.ReadFile(filepath.Join(dir, e.Name(), "template.yaml"))
			env, _ := os.ReadFile(filepath.Join(dir, e.Name(), "env.yaml"))
			f.Add(string(tmpl), string(env))
		}
	}
	tree := fstest.MapFS{
		"config/a.conf":        {Data: []byte("a")},
		"k/kustomization.yaml": {Data: []byte("resources: [cm.yaml]\n")},
		"k/cm.yaml":            {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")},
	}
	f.Fuzz(func(t *testing.T, tmpl, env string) {
		cfg := &schema.Config{Template: &schema.Template{}, EnvVars: &schema.EnvVars{}}
		if yaml.Unmarshal([]byte(tmpl), cfg.Template) != nil || yaml.Unmarshal([]byte(env), cfg.EnvVars) != nil {
			return
		}
		out, err := Render(Input{Config: cfg, Tree: tree, Context: Context{
			App: "fuzz", Branch: "feature/fuzz", Domain: "example.com", SecretPlaceholders: true,
		}})
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("render panicked: %v", err)
		}
		if err == nil && (out == nil || len(out.Objects) == 0 || out.Objects[0].GetKind() != "Namespace") {
			t.Fatal("no error and no Namespace first")
		}
	})
}
