package config

import (
	"strings"
	"testing"
	"time"
)

func TestTrafficPresetsAndDefaults(t *testing.T) {
	cfg, err := Load(fixture(t, `
apps:
- {name: a, repo: repo, cluster: lab}
clusters:
  default:
    traffic: {kind: ingress-nginx, service: ingress-nginx/ingress-nginx-controller-metrics, port: metrics}
  lab:
    traffic: {kind: traefik, urls: ["http://10.0.0.9:9100/metrics"], interval: 30s, max_bytes: 8Mi}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Clusters[DefaultCluster].Traffic
	if d.Metric != "nginx_ingress_controller_requests" || d.Label != "namespace" || d.Match != MatchNamespace ||
		d.Path != "/metrics" || d.Interval.Duration != time.Minute || d.Timeout.Duration != 10*time.Second || d.MaxBytes.Bytes != 32<<20 {
		t.Errorf("ingress-nginx preset and defaults: %+v", d)
	}
	if ns, name := d.ServiceRef(); ns != "ingress-nginx" || name != "ingress-nginx-controller-metrics" {
		t.Errorf("service %s/%s", ns, name)
	}
	l := cfg.Clusters["lab"].Traffic
	if l.Metric != "traefik_service_requests_total" || l.Label != "service" || l.Match != MatchPrefix || l.MaxBytes.Bytes != 8<<20 || l.Timeout.Duration != 10*time.Second {
		t.Errorf("traefik preset: %+v", l)
	}
}

func TestTrafficErrors(t *testing.T) {
	for body, want := range map[string]string{
		"{kind: haproxy, urls: [http://a/]}":                                       `clusters.default.traffic.kind: "haproxy": ingress-nginx, traefik or prometheus`,
		"{urls: [http://a/]}":                                                      "clusters.default.traffic.kind: required",
		"{kind: ingress-nginx}":                                                    "clusters.default.traffic: give a service",
		"{kind: ingress-nginx, service: nginx, port: metrics}":                     `clusters.default.traffic.service: "nginx" must be NAMESPACE/NAME`,
		"{kind: ingress-nginx, service: a/b}":                                      `clusters.default.traffic.port: ""`,
		"{kind: ingress-nginx, service: a/b, port: 70000}":                         `clusters.default.traffic.port: "70000"`,
		"{kind: ingress-nginx, urls: [ftp://a/]}":                                  `clusters.default.traffic.urls[0]: "ftp://a/" is not an http(s) URL`,
		"{kind: prometheus, urls: [http://a/]}":                                    "clusters.default.traffic: kind prometheus needs a metric and a label",
		"{kind: prometheus, metric: m, label: l, match: regex, urls: [http://a/]}": `clusters.default.traffic.match: "regex"`,
		"{kind: traefik, urls: [http://a/], interval: 1s}":                         "clusters.default.traffic.interval: at least 10s",
		"{kind: traefik, urls: [http://a/], timeout: 2m}":                          "clusters.default.traffic.timeout: 2m0s must be positive and at most the interval",
		"{kind: traefik, urls: [http://a/], path: metrics}":                        `clusters.default.traffic.path: "metrics" must start with /`,
		"{kind: traefik, urls: [http://a/], max_bytes: 2Gi}":                       "clusters.default.traffic.max_bytes: at most 1Gi",
		"{kind: traefik, urls: [http://a/], scrape: 1}":                            "clusters.default.traffic.scrape: unknown key",
	} {
		_, err := Load(fixture(t, "apps:\n- {name: a, repo: repo}\nclusters:\n  default:\n    traffic: "+body+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v; want it to contain %q", body, err, want)
		}
	}
}
