package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template/parse"
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
	})
}
