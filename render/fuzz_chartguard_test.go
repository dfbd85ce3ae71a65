package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"text/template/parse"
	"time"
)

// FuzzGuardTemplate rewrites arbitrary template text: guardTemplate never
// panics, a text that parses gives a rewrite that parses, and a text it
// cannot parse is returned unchanged (Helm then reports the error).
func FuzzGuardTemplate(f *testing.F) {
	_ = filepath.WalkDir("testdata", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, "/templates/") {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(string(b))
			}
		}
		return nil
	})
	for _, s := range []string{
		`{{ range $i, $e := .l }}{{ $i }}{{ else }}x{{ end }}`,
		`{{ define "a" }}{{ template "a" . }}{{ end }}{{ block "b" . }}b{{ end }}`,
		"{{- if .x -}} a {{- else if .y -}} b {{- else -}} c {{- end -}}",
		"{{ range 3 }}{{ break }}{{ continue }}{{ end }}{{/* c */}}{{ `r` }}",
		`{{ $x := 1 }}{{ $x = 2 }}{{ with $y := .z }}{{ $y }}{{ end }}`,
	} {
		f.Add(s)
	}
	parses := func(name, text string) bool {
		t := parse.New(name)
		t.Mode = parse.SkipFuncCheck
		_, err := t.Parse(text, "", "", map[string]*parse.Tree{})
		return err == nil
	}
	f.Fuzz(func(t *testing.T, text string) {
		out := guardTemplate("t.yaml", text)
		if !parses("t.yaml", text) {
			if out != text {
				t.Fatalf("unparsable text rewritten:\n%q\n→ %q", text, out)
			}
			return
		}
		if !parses("t.yaml", out) {
			t.Fatalf("the rewrite of a parsable text does not parse:\n%q\n→ %q", text, out)
		}
		// Without loops or template calls (which could run for ever
		// unguarded), the rewrite prints what the text prints.
		for _, word := range []string{"range", "template", "define", "block", "tpl"} {
			if strings.Contains(text, word) {
				return
			}
		}
		want, errWant := execFuzz(text)
		got, errGot := execFuzz(out)
		if (errWant == nil) != (errGot == nil) || want != got {
			t.Fatalf("%q\nrewritten %q\ngives %q (%v), want %q (%v)", text, out, got, errGot, want, errWant)
		}
	})
}

// execFuzz executes text with text/template's own functions and the
// guard's, on a small data set.
func execFuzz(text string) (string, error) {
	g := &chartGuard{deadline: time.Now().Add(time.Minute), limit: time.Minute, maxOut: 1 << 20}
	funcs := template.FuncMap{guardTickFunc: g.tick, guardOutFunc: func(n int) (string, error) { return "", g.wrote(n) },
		guardCountFunc: g.count, guardTextFunc: guardText}
	tpl, err := template.New("t.yaml").Funcs(funcs).Option("missingkey=zero").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	err = tpl.Execute(&b, map[string]any{"a": "x", "n": 2, "l": []any{1, "b"}, "m": map[string]any{"k": nil}})
	return b.String(), err
}
