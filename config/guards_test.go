package config

import (
	"strings"
	"testing"
)

func TestGuardsErrorsNameFileLineField(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"quota_bad_quantity", "apps: [{name: a, repo: repo}]\ndefaults:\n  resource_quota:\n    requests.cpu: lots\n",
			`arbor.yaml:4:5: defaults.resource_quota.requests.cpu: "lots" is not a quantity`},
		{"quota_bad_name", "apps:\n- name: a\n  repo: repo\n  resource_quota:\n    Requests CPU: \"1\"\n",
			`arbor.yaml:5:5: apps[0].resource_quota.Requests CPU: "Requests CPU" is not a resource a ResourceQuota can bound`},
		{"quota_negative", "apps:\n- name: a\n  repo: repo\n  resource_quota: {pods: \"-1\"}\n", `apps[0].resource_quota.pods: "-1" is not a quantity`},
		{"limit_part_unknown", "apps: [{name: a, repo: repo}]\ndefaults:\n  limit_range:\n    maximum: {cpu: \"1\"}\n",
			"arbor.yaml:4:5: defaults.limit_range.maximum: unknown part; use default, default_request, max or min"},
		{"limit_resource_unknown", "apps:\n- name: a\n  repo: repo\n  limit_range:\n    default:\n      gpu: \"1\"\n",
			"arbor.yaml:6:7: apps[0].limit_range.default.gpu: unknown resource; use cpu, memory, ephemeral-storage"},
		{"limit_bad_quantity", "apps:\n- name: a\n  repo: repo\n  limit_range:\n    max: {memory: big}\n", `apps[0].limit_range.max.memory: "big" is not a quantity`},
		{"max_environments_negative", "apps:\n- name: a\n  repo: repo\n  max_environments: -2\n", "arbor.yaml:4:3: apps[0].max_environments: must be 0 (no cap) or more, got -2"},
		{"max_environments_string", "apps: [{name: a, repo: repo}]\ndefaults:\n  max_environments: few\n", `arbor.yaml:3:3: defaults.max_environments: expected an integer, found "few"`},
		{"limit_range_not_map", "apps: [{name: a, repo: repo}]\ndefaults:\n  limit_range: [cpu]\n", "arbor.yaml:3:3: defaults.limit_range: expected a mapping, found a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(fixture(t, tt.body))
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			got := err.Error()
			if i := strings.Index(got, "arbor.yaml"); i >= 0 {
				got = got[i:]
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("error:\n%s\nwant it to contain:\n%s", got, tt.want)
			}
		})
	}
}

func TestGuardsForAppOverridesDefaults(t *testing.T) {
	cfg, err := Load(fixture(t, `defaults:
  resource_quota: {requests.cpu: "4", pods: "20"}
  limit_range:
    default: {cpu: 500m, memory: 256Mi}
  max_environments: 5
apps:
- name: a
  repo: repo
- name: b
  repo: repo
  resource_quota: {pods: "3"}
  limit_range: {}
  max_environments: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.GuardsFor(cfg.Apps[0])
	if a.ResourceQuota["requests.cpu"] != "4" || a.LimitRange["default"]["memory"] != "256Mi" || a.MaxEnvironments != 5 {
		t.Errorf("app a: %+v", a)
	}
	b := cfg.GuardsFor(cfg.Apps[1])
	if len(b.ResourceQuota) != 1 || b.ResourceQuota["pods"] != "3" || len(b.LimitRange) != 0 || b.MaxEnvironments != 2 {
		t.Errorf("app b: %+v", b)
	}
}
