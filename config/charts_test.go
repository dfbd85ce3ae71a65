package config

import (
	"strings"
	"testing"
)

// TestChartRepositories: the per-app allow-list of chart repositories, empty
// by default, each entry an https:// repository or an oci:// reference.
func TestChartRepositories(t *testing.T) {
	cfg, err := Load(fixture(t, `
apps:
- name: a
  repo: repo
- name: b
  repo: repo
  chart_repositories: [https://charts.example.com, oci://registry.example.com/charts]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Apps[0].ChartRepositories) != 0 || len(cfg.Apps[1].ChartRepositories) != 2 {
		t.Errorf("chart_repositories = %q and %q", cfg.Apps[0].ChartRepositories, cfg.Apps[1].ChartRepositories)
	}
	if _, err := Load(fixture(t, "apps:\n- name: a\n  repo: repo\nchart_plain_http_hosts: [registry.local]\n")); err == nil ||
		!strings.Contains(err.Error(), `chart_plain_http_hosts[0]: "registry.local" is not host:port`) {
		t.Errorf("a plain-HTTP registry without a port: %v", err)
	}
	_, err = Load(fixture(t, "apps:\n- name: a\n  repo: repo\n  chart_repositories: [charts.example.com]\n"))
	if err == nil || !strings.Contains(err.Error(), `apps[0].chart_repositories[0]: "charts.example.com" is not an https:// chart repository or an oci:// reference`) {
		t.Errorf("err = %v", err)
	}
}
