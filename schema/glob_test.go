package schema

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, branch string
		want            bool
	}{
		{"main", "main", true},
		{"main", "main2", false},
		{"*", "main", true},
		{"*", "feature/x", false},
		{"**", "feature/x", true},
		{"***", "feature/x", true},
		{"feature/*", "feature/x", true},
		{"feature/*", "feature/", true},
		{"feature/*", "feature/x/y", false},
		{"feature/**", "feature/x/y", true},
		{"feature/**/fix", "feature/fix", false},
		{"feature/**/fix", "feature/a/b/fix", true},
		{"dependabot/**", "main", false},
		{"release-?", "release-1", true},
		{"release-?", "release-10", false},
		{"a?b", "a/b", false},
		{"release-[0-9]", "release-a", false},
		{"release-[0-9]", "release-7", true},
		{"release-[!0-9]", "release-a", true},
		{"release-[^0-9]", "release-a", true},
		{"release-[!0-9]", "release-/", false},
		{"a[*-0]b", "a/b", false},
		{"a[*-0]b", "a.b", true},
		{"feature/[ab]*", "feature/a1", true},
		{"feature/[ab]*", "feature/c1", false},
		{"[]]x", "]x", true},
		{"[a-]", "-", true},
		{"v1.2", "v1x2", false},
		{"v1.2", "v1.2", true},
		{"ü*", "über", true},
		{"[ü]ber", "über", true},
		{"(x|y)+", "(x|y)+", true},
	} {
		g, err := ParseGlob(c.pattern)
		if err != nil {
			t.Errorf("ParseGlob(%q): %v", c.pattern, err)
			continue
		}
		if got := g.Match(c.branch); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.pattern, c.branch, got, c.want)
		}
	}
}

func TestGlobErrors(t *testing.T) {
	for pattern, want := range map[string]string{
		"":                         "empty pattern",
		"feature/[ab":              "unclosed '['",
		"[]":                       "unclosed '['",
		"[z-a]":                    "reversed",
		"[/]":                      "only '/'",
		`a\*`:                      "no escapes",
		strings.Repeat("*x", 1000): "longer than",
		"\xff":                     "UTF-8",
	} {
		_, err := ParseGlob(pattern)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseGlob(%.20q) = %v, want an error containing %q", pattern, err, want)
		}
	}
	var zero Glob
	if zero.Match("main") {
		t.Error("the zero Glob matches")
	}
}

func TestBranchFilterAllows(t *testing.T) {
	f := &BranchFilter{Include: mustGlobs(t, "*", "feature/**"), Exclude: mustGlobs(t, "feature/wip-*")}
	for branch, want := range map[string]bool{
		"main": true, "feature/a/b": true, "feature/wip-x": false, "fix/x": false,
	} {
		if got := f.Allows(branch); got != want {
			t.Errorf("Allows(%q) = %v, want %v", branch, got, want)
		}
	}
	var none *BranchFilter
	if !none.Allows("anything/goes") || !(&BranchFilter{}).Allows("x/y") {
		t.Error("an absent or empty filter must allow every branch")
	}
}

// TestTemplateBranchPatterns checks that the template's patterns are compiled
// at load, and that a bad one is an error at its own position.
func TestTemplateBranchPatterns(t *testing.T) {
	tmpl := "services: [{name: web, image: web:1}]\n" +
		"branches: {include: ['feature/*', 'fix/[ab']}\n" +
		"environment_templates: [{name: qa, branches: ['qa/**']}]\n"
	cfg, found := mustLoad(t, fstest.MapFS{DefaultConfigFile: {Data: []byte(tmpl)}}, LoadOptions{})
	errs := found.Errors()
	if len(errs) != 1 || errs[0].Field != "branches.include[1]" || errs[0].Line != 2 || errs[0].Column != 35 {
		t.Fatalf("want one error at .release.yaml:2:35 branches.include[1], got %v", found)
	}
	if !cfg.Template.Branches.Allows("feature/x") || cfg.Template.Branches.Allows("fix/a") {
		t.Error("template branches filter not compiled at load")
	}
	if !cfg.Template.EnvironmentTemplates[0].Branches.MatchAny("qa/1/2") {
		t.Error("environment template branches not compiled at load")
	}
	out, err := MarshalTemplate(cfg.Template)
	if err != nil || !strings.Contains(string(out), "- qa/**") {
		t.Errorf("marshalled template lost its patterns: %v\n%s", err, out)
	}
}

func mustGlobs(t *testing.T, patterns ...string) Globs {
	t.Helper()
	gs, err := ParseGlobs(patterns...)
	if err != nil {
		t.Fatal(err)
	}
	return gs
}
