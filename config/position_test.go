package config_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/schema"
)

// TestYAMLErrorsAtOnePosition feeds the same bad YAML to the daemon config
// and to the template loader: both must place the syntax error at the same
// line, the right one.
func TestYAMLErrorsAtOnePosition(t *testing.T) {
	const file = ".release.yaml"
	for _, c := range []struct {
		doc  string
		want string // FILE:LINE of the error
	}{
		{"apps:\n- name: a\n  repo: [x\n", file + ":3"},         // the unclosed list starts at line 3
		{"a: b\nc: [1, 2\nd: e\n", file + ":2"},                 // parser error: yaml.v3 counts from 0
		{"apps:\n- name: a\n  repo: x\n bad: 1\n", file + ":4"}, // parser error
		{"a: 'x\n", file + ":2"},                                // scanner error: counted from 1
		{"a:\n\tb: 1\n", file + ":2"},                           // scanner error
	} {
		_, err := config.Parse(file, []byte(c.doc))
		if err == nil {
			t.Fatalf("%q: config.Parse succeeded", c.doc)
		}
		_, found, lerr := schema.Load(fstest.MapFS{file: {Data: []byte(c.doc)}}, file, schema.LoadOptions{})
		if lerr != nil || len(found) == 0 {
			t.Fatalf("%q: schema.Load: %v %v", c.doc, lerr, found)
		}
		daemon, template := position(err.Error()), position(found[0].String())
		if daemon != c.want || template != c.want {
			t.Errorf("%q: daemon config error at %s, template error at %s; want both at %s", c.doc, daemon, template, c.want)
		}
	}
}

// position returns the FILE:LINE[:COL] an error message starts with.
func position(msg string) string {
	pos, _, _ := strings.Cut(msg, ": ")
	return pos
}
