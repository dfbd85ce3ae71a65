package config

import (
	"strings"
	"testing"
	"time"

	"github.com/arbordev/arbor/render"
)

// TestKustomizeLimits checks the per-app kustomize limits: render's defaults
// when absent, the values given otherwise.
func TestKustomizeLimits(t *testing.T) {
	cfg, err := Load(fixture(t, `
apps:
- name: a
  repo: repo
- name: b
  repo: repo
  kustomize: {max_file_size: 1Mi, max_total_size: 8Mi, timeout: 5s}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Apps[0].Kustomize, cfg.Apps[1].Kustomize
	if a.MaxFileSize.Bytes != render.DefaultKustomizeMaxFileBytes || a.MaxTotalSize.Bytes != render.DefaultKustomizeMaxTotalBytes || a.Timeout.Duration != render.DefaultKustomizeTimeout {
		t.Errorf("defaults %+v, want render's: %d, %d, %s", a, render.DefaultKustomizeMaxFileBytes, render.DefaultKustomizeMaxTotalBytes, render.DefaultKustomizeTimeout)
	}
	if b.MaxFileSize.Bytes != 1<<20 || b.MaxTotalSize.Bytes != 8<<20 || b.Timeout.Duration != 5*time.Second {
		t.Errorf("given %+v, want 1Mi, 8Mi, 5s", b)
	}
}

func TestKustomizeLimitsErrors(t *testing.T) {
	for body, want := range map[string]string{
		"kustomize: {max_file_size: lots}": `arbor.yaml:4:15: apps[0].kustomize.max_file_size: invalid size "lots"`,
		"kustomize: {max_file_size: 10}":   "arbor.yaml:4:15: apps[0].kustomize.max_file_size: must be at least 1Ki, got 10 bytes",
		"kustomize: {max_total_size: 1Mi}": "arbor.yaml:4:15: apps[0].kustomize.max_total_size: must be at least max_file_size (4194304 bytes), got 1048576 bytes",
		"kustomize: {timeout: 1ms}":        "arbor.yaml:4:15: apps[0].kustomize.timeout: must be at least 1s, got 1ms",
		"kustomize: {max_files: 3}":        "arbor.yaml:4:15: apps[0].kustomize.max_files: unknown key (known keys: max_file_size, max_total_size, timeout)",
		"kustomize: 4Mi":                   "arbor.yaml:4:3: apps[0].kustomize: expected a mapping, found",
	} {
		_, err := Load(fixture(t, "apps:\n- name: a\n  repo: repo\n  "+body+"\n"))
		if err == nil {
			t.Errorf("%s: no error; want %q", body, want)
			continue
		}
		got := err.Error()
		if i := strings.Index(got, "arbor.yaml"); i >= 0 {
			got = got[i:]
		}
		if !strings.Contains(got, want) {
			t.Errorf("%s: error\n%s\nwant it to contain\n%s", body, got, want)
		}
	}
}
