package config

import (
	"strings"
	"testing"
	"time"
)

func TestGitLimitsAndPodSecurity(t *testing.T) {
	cfg, err := Load(fixture(t, `
apps:
- name: a
  repo: repo
- name: b
  repo: repo
  git_timeout: 30s
  git_max_fetch_size: 1Gi
  pod_security: restricted
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Apps[0], cfg.Apps[1]
	if a.GitTimeout.Duration != 2*time.Minute || a.GitMaxFetchSize.Bytes != 512<<20 || a.PodSecurity != "baseline" {
		t.Errorf("defaults: git_timeout %s, git_max_fetch_size %d, pod_security %q; want 2m, 512Mi, baseline",
			a.GitTimeout.Duration, a.GitMaxFetchSize.Bytes, a.PodSecurity)
	}
	if b.GitTimeout.Duration != 30*time.Second || b.GitMaxFetchSize.Bytes != 1<<30 || b.PodSecurity != "restricted" {
		t.Errorf("given: git_timeout %s, git_max_fetch_size %d, pod_security %q", b.GitTimeout.Duration, b.GitMaxFetchSize.Bytes, b.PodSecurity)
	}
}

func TestGitLimitsAndPodSecurityErrors(t *testing.T) {
	for body, want := range map[string]string{
		"git_timeout: soon":           `arbor.yaml:4:3: apps[0].git_timeout: invalid duration "soon"`,
		"git_timeout: 10ms":           "arbor.yaml:4:3: apps[0].git_timeout: must be at least 1s, got 10ms",
		"git_max_fetch_size: lots":    `arbor.yaml:4:3: apps[0].git_max_fetch_size: invalid size "lots": write it like 512Mi or 1Gi`,
		"git_max_fetch_size: -1Gi":    `arbor.yaml:4:3: apps[0].git_max_fetch_size: invalid size "-1Gi"`,
		"git_max_fetch_size: 1Ki":     "arbor.yaml:4:3: apps[0].git_max_fetch_size: must be at least 1Mi, got 1024 bytes",
		"git_max_fetch_size: [1]":     "arbor.yaml:4:3: apps[0].git_max_fetch_size: expected a size such as 512Mi or 1Gi, found a list",
		"pod_security: none":          `arbor.yaml:4:3: apps[0].pod_security: "none" is not a Pod Security Standard: use privileged, baseline, restricted`,
		"pod_security: {level: base}": "arbor.yaml:4:3: apps[0].pod_security: expected a string, found a mapping",
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
