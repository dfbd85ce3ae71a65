package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arbordev/arbor/schema"
)

func exitCode(err error) int {
	var ec *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		return ec.code
	default:
		return -1
	}
}

func TestValidate(t *testing.T) {
	root := t.TempDir()
	good := filepath.Join(root, "good")
	writeFile(t, filepath.Join(good, ".release.yaml"), "services:\n- name: web\n  image: nginx\n  colour: blue\n")
	bad := filepath.Join(root, "bad")
	writeFile(t, filepath.Join(bad, ".release", "application_template.yaml"), "services:\n- name: web\n  image: nginx\nworkflows:\n- name: setup\n  order_from: [services.db]\n")
	empty := filepath.Join(root, "empty")
	writeFile(t, filepath.Join(empty, "README.md"), "no config\n")
	cycle := filepath.Join(root, "cycle")
	writeFile(t, filepath.Join(cycle, ".release.yaml"), "services:\n- name: web\n  image: nginx\nenvironment_variables:\n  mapping:\n    A: \"${B}\"\n    B: \"${A}\"\n")
	param := filepath.Join(root, "param")
	writeFile(t, filepath.Join(param, ".release.yaml"), "parameters:\n- name: size\nservices:\n- name: web\n  image: nginx\n")

	tests := []struct {
		name   string
		dirs   []string
		opts   validateOptions
		code   int
		stdout []string
	}{
		{"valid with warning", []string{good}, validateOptions{format: "text"}, exitOK,
			[]string{filepath.Join(good, ".release.yaml") + `:4:3: warning: services[0].colour: unknown key "colour"`}},
		{"strict", []string{good}, validateOptions{format: "text", strict: true}, exitNo,
			[]string{`error: services[0].colour: unknown key "colour"`}},
		{"invalid", []string{good, bad}, validateOptions{format: "text"}, exitNo,
			[]string{filepath.Join(bad, ".release", "application_template.yaml") + `:6:16: error: workflows[0].order_from[0]: no service named "db"`}},
		{"github", []string{bad}, validateOptions{format: "github"}, exitNo,
			[]string{"::error file=" + filepath.ToSlash(filepath.Join(bad, ".release", "application_template.yaml")) + `,line=6,col=16,title=workflows[0].order_from[0]::workflows[0].order_from[0]: no service named "db"`}},
		{"render error", []string{cycle}, validateOptions{format: "text"}, exitNo,
			[]string{filepath.Join(cycle, ".release.yaml") + `:1:1: error: render: environment template ephemeral: `, "mapping has a cycle: A -> B -> A"}},
		{"no config", []string{empty}, validateOptions{format: "text"}, exitUsage, nil},
		{"no config among others", []string{bad, empty}, validateOptions{format: "text"}, exitUsage,
			[]string{`no service named "db"`}},
		{"missing dir", []string{filepath.Join(root, "nope")}, validateOptions{format: "text"}, exitUsage, nil},
		{"bad format", []string{good}, validateOptions{format: "xml"}, exitUsage, nil},
		{"bad param", []string{good}, validateOptions{format: "text", params: []string{"size"}}, exitUsage, nil},
		{"required param missing", []string{param}, validateOptions{format: "text"}, exitNo, []string{`required parameter "size" has no value`}},
		{"required param given", []string{param}, validateOptions{format: "text", params: []string{"size=1Gi"}}, exitOK, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			err := runValidate(&out, &errs, tt.dirs, tt.opts)
			if got := exitCode(err); got != tt.code {
				t.Fatalf("exit %d (%v), want %d\nstdout:\n%s", got, err, tt.code, out.String())
			}
			for _, want := range tt.stdout {
				if !strings.Contains(out.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, ".release.yaml"), "services:\n- name: web\n  image: nginx\n  ports:\n  - port: 70000\n")
	var out bytes.Buffer
	err := runValidate(&out, &bytes.Buffer{}, []string{dir}, validateOptions{format: "json"})
	if exitCode(err) != exitNo {
		t.Fatalf("err = %v", err)
	}
	var got []schema.Finding
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	want := schema.Finding{
		Position: schema.Position{File: filepath.Join(dir, ".release.yaml"), Line: 5, Column: 5},
		Field:    "services[0].ports[0].port", Severity: schema.SeverityError, Message: "port 70000 is out of range 1-65535",
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %+v, want [%+v]", got, want)
	}
}

func TestGithubAnnotationEscapes(t *testing.T) {
	f := schema.Finding{Position: schema.Position{File: "a,b:c.yaml", Line: 2}, Severity: schema.SeverityWarning, Message: "100% sure\nreally"}
	want := "::warning file=a%2Cb%3Ac.yaml,line=2::100%25 sure%0Areally"
	if got := githubAnnotation(f); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
