package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const smallTemplate = `app: shop
services:
- name: web
  image: nginx:1.27
  ports:
  - type: node_port
    port: "8080"
    target_port: 80
`

func TestLoadNoConfig(t *testing.T) {
	_, _, err := Load(fstest.MapFS{"README.md": {Data: []byte("hi")}}, DefaultConfigFile, LoadOptions{})
	if !errors.Is(err, ErrNoConfig) {
		t.Fatalf("err = %v, want ErrNoConfig", err)
	}
}

func TestLoadForms(t *testing.T) {
	env := "defaults:\n- key: A\n  value: b\n"
	tests := []struct {
		name     string
		fsys     fstest.MapFS
		form     Form
		template string
		envFile  string
	}{
		{"inline", fstest.MapFS{".release.yaml": {Data: []byte(smallTemplate)}}, FormInline, ".release.yaml", ""},
		{"inline env map", fstest.MapFS{".release.yaml": {Data: []byte(smallTemplate + "environment_variables:\n  defaults:\n  - key: A\n    value: b\n")}}, FormInline, ".release.yaml", ""},
		{"inline env path", fstest.MapFS{
			".release.yaml": {Data: []byte(smallTemplate + "environment_variables: env.yaml\n")},
			"env.yaml":      {Data: []byte(env)},
		}, FormInline, ".release.yaml", "env.yaml"},
		{"pointer", fstest.MapFS{
			".release.yaml":     {Data: []byte("application_template: ./t.yaml\nenvironment_variables: e.yaml\n")},
			"t.yaml":            {Data: []byte(smallTemplate)},
			"e.yaml":            {Data: []byte(env)},
			".release/ignored":  {Data: []byte("x")},
			"unrelated/file.md": {Data: []byte("x")},
		}, FormPointer, "t.yaml", "e.yaml"},
		{"default", fstest.MapFS{
			DefaultTemplateFile: {Data: []byte(smallTemplate)},
			DefaultEnvVarsFile:  {Data: []byte(env)},
		}, FormDefault, DefaultTemplateFile, DefaultEnvVarsFile},
		{"compose", fstest.MapFS{
			".release.yaml":      {Data: []byte("compose: docker-compose.yml\n")},
			"docker-compose.yml": {Data: []byte("services:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n    environment: [A=b]\n")},
		}, FormCompose, "docker-compose.yml", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, fs, err := Load(tt.fsys, DefaultConfigFile, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if fs.HasErrors() {
				t.Fatalf("unexpected errors: %v", fs)
			}
			if cfg.Form != tt.form || cfg.TemplateFile != tt.template || cfg.EnvVarsFile != tt.envFile {
				t.Errorf("form, template, env = %s, %s, %s; want %s, %s, %s", cfg.Form, cfg.TemplateFile, cfg.EnvVarsFile, tt.form, tt.template, tt.envFile)
			}
			if len(cfg.Template.Services) != 1 || cfg.Template.Services[0].Name != "web" {
				t.Fatalf("services = %+v", cfg.Template.Services)
			}
			p := cfg.Template.Services[0].Ports[0]
			if p.Type != "node_port" || p.Port != 8080 || p.TargetPort == nil || *p.TargetPort != 80 {
				t.Errorf("port = %+v", p)
			}
			if tt.name != "inline" {
				if len(cfg.EnvVars.Defaults)+len(cfg.EnvVars.Services["web"]) != 1 {
					t.Errorf("env vars = %+v", cfg.EnvVars)
				}
			}
		})
	}
}

func TestLoadHash(t *testing.T) {
	fsys := fstest.MapFS{
		".release.yaml": {Data: []byte("application_template: t.yaml\n")},
		"t.yaml":        {Data: []byte(smallTemplate)},
		"main.go":       {Data: []byte("package main")},
	}
	a := mustHash(t, fsys)
	if b := mustHash(t, fsys); a != b {
		t.Errorf("hash not stable: %s, %s", a, b)
	}
	fsys["main.go"] = &fstest.MapFile{Data: []byte("package main // changed")}
	if b := mustHash(t, fsys); a != b {
		t.Errorf("a code change changed the configuration hash")
	}
	fsys["t.yaml"] = &fstest.MapFile{Data: []byte(smallTemplate + "domain: example.com\n")}
	if b := mustHash(t, fsys); a == b {
		t.Errorf("a template change kept the configuration hash")
	}
}

func mustHash(t *testing.T, fsys fstest.MapFS) string {
	t.Helper()
	cfg, _, err := Load(fsys, DefaultConfigFile, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Hash) != 64 {
		t.Fatalf("hash %q is not a sha256", cfg.Hash)
	}
	return cfg.Hash
}

func TestConfigPosition(t *testing.T) {
	fsys := fstest.MapFS{
		".release.yaml": {Data: []byte("application_template: t.yaml\nenvironment_variables: e.yaml\n")},
		"t.yaml":        {Data: []byte(smallTemplate)},
		"e.yaml":        {Data: []byte("services:\n  web:\n  - key: A\n    value: b\n")},
	}
	cfg, _, err := Load(fsys, DefaultConfigFile, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]Position{
		"services[0].ports[0].port":                   {File: "t.yaml", Line: 7, Column: 5},
		"services[0].ports[0]":                        {File: "t.yaml", Line: 6, Column: 5},
		"services[0].readiness_probe.period_seconds":  {File: "t.yaml", Line: 3, Column: 3}, // not written: its service
		"environment_variables.services.web[0].value": {File: "e.yaml", Line: 4, Column: 5},
		"nothing.at.all":                              {File: "t.yaml", Line: 1, Column: 1}, // the document
	}
	for field, want := range tests {
		if got := cfg.Position(field); got != want {
			t.Errorf("Position(%q) = %v, want %v", field, got, want)
		}
	}
}

func TestLoadParameters(t *testing.T) {
	data := smallTemplate + "parameters:\n- name: region\n"
	fsys := fstest.MapFS{".release.yaml": {Data: []byte(data)}}
	_, fs, err := Load(fsys, DefaultConfigFile, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasFinding(fs, ".release.yaml", 10, `required parameter "region" has no value`) {
		t.Errorf("missing required-parameter error: %v", fs)
	}
	_, fs, _ = Load(fsys, DefaultConfigFile, LoadOptions{Parameters: map[string]string{"region": "eu"}})
	if fs.HasErrors() {
		t.Errorf("parameter given, still errors: %v", fs)
	}
}

func TestLoadDecodesReleaseSpellings(t *testing.T) {
	data, err := os.ReadFile("testdata/valid/release_spelling.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, fs, err := Load(fstest.MapFS{".release.yaml": {Data: data}}, DefaultConfigFile, LoadOptions{})
	if err != nil || len(fs) > 0 {
		t.Fatalf("Load: %v %v", err, fs)
	}
	s := cfg.Template.Services[0]
	if p := s.ReadinessProbe; p == nil || p.PeriodSeconds == nil || *p.PeriodSeconds != 10 || p.HTTPGet == nil {
		t.Errorf("merge key not applied: %+v", s.ReadinessProbe)
	}
	want := []AutoscaleMetric{{Resource: "cpu", Target: 50}}
	if !reflect.DeepEqual(s.Autoscale.Metrics, want) {
		t.Errorf("metrics = %+v, want %+v", s.Autoscale.Metrics, want)
	}
}

func TestEnvVarsMappingOrder(t *testing.T) {
	data := smallTemplate + "environment_variables:\n  mapping:\n    Z: a\n    A: 3\n    M: \"${Z}\"\n"
	cfg, fs, err := Load(fstest.MapFS{".release.yaml": {Data: []byte(data)}}, DefaultConfigFile, LoadOptions{})
	if err != nil || fs.HasErrors() {
		t.Fatalf("Load: %v %v", err, fs)
	}
	if got := strings.Join(cfg.EnvVars.MappingOrder, ","); got != "Z,A,M" {
		t.Errorf("MappingOrder = %s", got)
	}
	if cfg.EnvVars.Mapping["A"] != "3" {
		t.Errorf("Mapping = %v", cfg.EnvVars.Mapping)
	}
}

func TestLoadKeepsGoodPartsOfBadFile(t *testing.T) {
	data := "services:\n- name: web\n  image: nginx\n  replicas: many\n- name: api\n  image: api:1\n"
	cfg, fs, err := Load(fstest.MapFS{".release.yaml": {Data: []byte(data)}}, DefaultConfigFile, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasFinding(fs, ".release.yaml", 4, "expected an integer") {
		t.Errorf("findings = %v", fs)
	}
	if len(cfg.Template.Services) != 2 || cfg.Template.Services[1].Name != "api" {
		t.Errorf("services = %+v", cfg.Template.Services)
	}
}

func TestParseDuration(t *testing.T) {
	tests := map[string]time.Duration{
		"72h":    72 * time.Hour,
		"90m":    90 * time.Minute,
		"3d":     72 * time.Hour,
		"1d12h":  36 * time.Hour,
		" 2d ":   48 * time.Hour,
		"1h30m":  90 * time.Minute,
		"0d1m0s": time.Minute,
	}
	for in, want := range tests {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "3", "3 days", "d", "1w", "999999999d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

// TestJSONSchemaIsValid compiles the embedded schema, which checks it
// against the 2020-12 meta-schema, and shows that a broken schema is caught.
func TestJSONSchemaIsValid(t *testing.T) {
	s, err := compileSchemas(JSONSchema)
	if err != nil {
		t.Fatalf("release.schema.json: %v", err)
	}
	if s.template == nil || s.envVars == nil || s.pointr == nil {
		t.Fatal("a part of release.schema.json did not compile")
	}
	broken := strings.Replace(string(JSONSchema), `"type": "object"`, `"type": 5`, 1)
	if broken == string(JSONSchema) {
		t.Fatal(`the schema has no "type": "object" to break`)
	}
	if _, err := compileSchemas([]byte(broken)); err == nil {
		t.Fatal("a schema with \"type\": 5 compiled")
	}
}

// TestLoadFileSizeLimit: a configuration file over the limit is an error
// finding naming the file and the limit, whichever file it is, and the limit
// can be raised.
func TestLoadFileSizeLimit(t *testing.T) {
	big := []byte(smallTemplate + "# " + strings.Repeat("x", DefaultMaxFileSize) + "\n")
	ptr := []byte("application_template: t.yaml\nenvironment_variables: e.yaml\n")
	cases := []struct {
		name string
		fsys fstest.MapFS
		file string
	}{
		{"inline", fstest.MapFS{".release.yaml": {Data: big}}, ".release.yaml"},
		{"template", fstest.MapFS{".release.yaml": {Data: ptr}, "t.yaml": {Data: big}}, "t.yaml"},
		{"env vars", fstest.MapFS{".release.yaml": {Data: ptr}, "t.yaml": {Data: []byte(smallTemplate)}, "e.yaml": {Data: big}}, "e.yaml"},
		{"default", fstest.MapFS{DefaultTemplateFile: {Data: big}}, DefaultTemplateFile},
		{"compose", fstest.MapFS{".release.yaml": {Data: []byte("compose: c.yml\n")}, "c.yml": {Data: big}}, "c.yml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, findings, err := Load(c.fsys, DefaultConfigFile, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := Finding{Position: Position{File: c.file}, Severity: SeverityError,
				Message: fmt.Sprintf("file too large: %d bytes, the limit is 1 MiB", len(big))}
			if !slices.Contains(findings, want) {
				t.Errorf("findings:\n%v\nwant %v", findings, want)
			}
			_, findings, err = Load(c.fsys, DefaultConfigFile, LoadOptions{MaxFileSize: 2 << 20})
			if err != nil || strings.Contains(fmt.Sprint(findings), "too large") {
				t.Errorf("with a 2 MiB limit: %v, %v", findings, err)
			}
		})
	}
}

// TestLoadRefusesSpecialFiles: a named pipe or a link out of the repository
// where a configuration file is expected is an error finding, at once.
func TestLoadRefusesSpecialFiles(t *testing.T) {
	for name, mode := range map[string]fs.FileMode{"fifo": fs.ModeNamedPipe, "device": fs.ModeDevice | fs.ModeCharDevice, "dir": fs.ModeDir} {
		fsys := fstest.MapFS{".release.yaml": {Mode: mode}}
		_, findings, err := Load(fsys, DefaultConfigFile, LoadOptions{})
		if err != nil || !findings.HasErrors() || !strings.Contains(findings[0].Message, "not a regular file") || findings[0].File != ".release.yaml" {
			t.Errorf("%s: %v, %v", name, findings, err)
		}
	}
}
