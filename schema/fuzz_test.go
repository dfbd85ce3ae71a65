package schema

import (
	"testing"
	"testing/fstest"
)

// FuzzLoad loads arbitrary bytes as a template (inline or pointer form) or a
// compose file, with arbitrary bytes as the env-vars file (mode&3 picks the
// form, mode&4 Strict): Load must never
// panic or fail with an error other than I/O, and every finding must be
// placed in a file. The seed corpus is testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(smallTemplate), []byte("defaults:\n- key: A\n  value: b\n"), uint8(0))
	f.Add([]byte("services:\n- {name: w, build: {context: ./w, args: [A=1, {x: y}], dockerfile: 7}}\nbuilds: [{name: w, args: {B: [1]}}]\n"), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, main, env []byte, mode uint8) {
		fsys := fstest.MapFS{"e.yaml": {Data: env}, "deploy/x.conf": {Data: []byte("x")}}
		switch mode % 3 {
		case 0: // inline; environment_variables: e.yaml may point at env
			fsys[DefaultConfigFile] = &fstest.MapFile{Data: main}
		case 1:
			fsys[DefaultConfigFile] = &fstest.MapFile{Data: []byte("application_template: t.yaml\nenvironment_variables: e.yaml\n")}
			fsys["t.yaml"] = &fstest.MapFile{Data: main}
		case 2:
			fsys[DefaultConfigFile] = &fstest.MapFile{Data: []byte("compose: docker-compose.yml\n")}
			fsys["docker-compose.yml"] = &fstest.MapFile{Data: main}
		}
		cfg, findings, err := Load(fsys, DefaultConfigFile, LoadOptions{Strict: mode&4 != 0})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if cfg == nil || cfg.Template == nil || cfg.EnvVars == nil || cfg.Hash == "" {
			t.Fatalf("incomplete config: %+v", cfg)
		}
		for _, fd := range findings {
			if fd.File == "" || fd.Message == "" {
				t.Fatalf("finding without file or message: %#v", fd)
			}
			_ = fd.String()
			_ = cfg.Position(fd.Field)
		}
		for i := range cfg.Template.Services {
			if spec, ok := cfg.Template.BuildOf(&cfg.Template.Services[i]); ok && spec.Dockerfile == "" {
				t.Fatalf("build of %s without a Dockerfile: %+v", cfg.Template.Services[i].Name, spec)
			}
		}
	})
}
