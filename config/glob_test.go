package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// TestBranchGlobOneMeaning checks that every reader of a branch pattern
// answers the same: the daemon config's branches filter and the template's
// template's branches filter and environment_templates[].branches (which
// render uses to choose the environment template).
func TestBranchGlobOneMeaning(t *testing.T) {
	for _, c := range []struct {
		pattern, branch string
		want            bool
	}{
		{"feature/[ab]*", "feature/a1", true},
		{"feature/[ab]*", "feature/c1", false},
		{"feature/[!ab]*", "feature/c1", true},
		{"feature/*", "feature/x/y", false},
		{"feature/**", "feature/x/y", true},
		{"release-?", "release-1", true},
		{"release-?", "release-10", false},
	} {
		t.Run(c.pattern+"@"+c.branch, func(t *testing.T) {
			if got := daemonAllows(t, c.pattern, c.branch); got != c.want {
				t.Errorf("daemon config branches %q allows %q = %v, want %v", c.pattern, c.branch, got, c.want)
			}
			filter, claims := templateAnswers(t, c.pattern, c.branch)
			if filter != c.want {
				t.Errorf("template branches %q allows %q = %v, want %v", c.pattern, c.branch, filter, c.want)
			}
			if claims != c.want {
				t.Errorf("environment template branches %q claims %q = %v, want %v", c.pattern, c.branch, claims, c.want)
			}
		})
	}
}

func daemonAllows(t *testing.T, pattern, branch string) bool {
	t.Helper()
	dir := t.TempDir()
	body := fmt.Sprintf("apps:\n- name: shop\n  repo: %s\n  branches: {include: [%q]}\n", dir, pattern)
	path := filepath.Join(dir, "arbor.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Apps[0].Branches.Allows(branch)
}

// templateAnswers returns whether the template's branches filter allows
// branch, and whether render gives branch the environment template that
// claims the pattern.
func templateAnswers(t *testing.T, pattern, branch string) (allows, claims bool) {
	t.Helper()
	tmpl := fmt.Sprintf("services: [{name: web, image: web:1}]\nbranches: {include: [%q]}\n"+
		"environment_templates:\n- {name: ephemeral}\n- {name: claimed, branches: [%q]}\n", pattern, pattern)
	cfg, findings, err := schema.Load(fstest.MapFS{".release.yaml": {Data: []byte(tmpl)}}, ".release.yaml", schema.LoadOptions{})
	if err != nil || findings.HasErrors() {
		t.Fatalf("load: %v %v", err, findings)
	}
	env, err := render.Render(render.Input{Config: cfg, Context: render.Context{App: "shop", Branch: branch, Domain: "example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Template.Branches.Allows(branch), env.Template == "claimed"
}
