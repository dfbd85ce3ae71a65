package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The kinds of traffic source: an ingress controller whose request
// counters arbor knows, or any Prometheus counter named in full.
const (
	TrafficIngressNginx = "ingress-nginx"
	TrafficTraefik      = "traefik"
	TrafficPrometheus   = "prometheus"
)

// How a counter's label names an environment's namespace.
const (
	MatchNamespace = "namespace" // the label's value is the namespace
	MatchPrefix    = "prefix"    // the value starts with "NAMESPACE-" (longest namespace wins)
)

// Defaults of a traffic source.
const (
	DefaultTrafficInterval = time.Minute
	DefaultTrafficTimeout  = 10 * time.Second
	DefaultTrafficMaxBytes = 32 << 20
	DefaultTrafficPath     = "/metrics"
	// MaxTrafficTargets bounds the endpoints scraped in one round.
	MaxTrafficTargets = 64
)

// Traffic says where arbor reads how many requests the environments of a
// cluster get, so that idle_after counts from the last request and not
// only from the last push (docs/pausing.md): the Prometheus metrics of
// the cluster's ingress controller, scraped from every endpoint of its
// metrics Service, or from fixed URLs.
type Traffic struct {
	// Kind is ingress-nginx, traefik or prometheus; empty: no source,
	// idle_after counts from pushes, deploys and wake requests only.
	Kind string `yaml:"kind"`
	// Metric, Label and Match name the counter; set by ingress-nginx and
	// traefik, required for prometheus (Match defaults to namespace).
	Metric string `yaml:"metric"`
	Label  string `yaml:"label"`
	Match  string `yaml:"match"`
	// Service is NAMESPACE/NAME of the controller's metrics Service: its
	// EndpointSlices' ready endpoints are scraped on Port (a name or a
	// number) at Path.
	Service string `yaml:"service"`
	Port    string `yaml:"port"`
	Path    string `yaml:"path"`
	// URLs are scraped as they are (a controller outside the cluster).
	URLs []string `yaml:"urls"`
	// Interval is the time between rounds; Timeout bounds one scrape and
	// MaxBytes one response.
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// Enabled reports whether a traffic source is configured.
func (t Traffic) Enabled() bool { return t.Kind != "" }

// ServiceRef splits Service into its namespace and name.
func (t Traffic) ServiceRef() (namespace, name string) {
	namespace, name, _ = strings.Cut(t.Service, "/")
	return namespace, name
}

// traffic fills a traffic source's defaults and checks it.
func (d *decoder) traffic(t *Traffic, field string) {
	if !t.Enabled() {
		if t.Service != "" || len(t.URLs) > 0 || t.Metric != "" {
			d.fail(field+".kind", "required with a service, urls or a metric: ingress-nginx, traefik or prometheus")
		}
		return
	}
	d.trafficCounter(t, field)
	if t.Service == "" && len(t.URLs) == 0 {
		d.fail(field, "give a service (NAMESPACE/NAME of the controller's metrics Service) or urls")
	}
	if t.Service != "" {
		ns, name := t.ServiceRef()
		if !dnsLabel.MatchString(ns) || !dnsLabel.MatchString(name) {
			d.fail(field+".service", "%q must be NAMESPACE/NAME", t.Service)
		}
		if n, err := strconv.Atoi(t.Port); t.Port == "" || (err == nil && (n < 1 || n > 65535)) || (err != nil && !dnsLabel.MatchString(t.Port)) {
			d.fail(field+".port", "%q: the metrics port of the Service's endpoints, by name or number", t.Port)
		}
	}
	if t.Path == "" {
		t.Path = DefaultTrafficPath
	} else if !strings.HasPrefix(t.Path, "/") {
		d.fail(field+".path", "%q must start with /", t.Path)
	}
	for i, u := range t.URLs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			d.fail(fmt.Sprintf("%s.urls[%d]", field, i), "%q is not an http(s) URL", u)
		}
	}
	if len(t.URLs) > MaxTrafficTargets {
		d.fail(field+".urls", "at most %d", MaxTrafficTargets)
	}
	d.trafficBounds(t, field)
}

// trafficCounter sets the counter of a known controller, or checks the
// one given for prometheus.
func (d *decoder) trafficCounter(t *Traffic, field string) {
	switch t.Kind {
	case TrafficIngressNginx:
		t.Metric, t.Label, t.Match = "nginx_ingress_controller_requests", "namespace", MatchNamespace
	case TrafficTraefik:
		t.Metric, t.Label, t.Match = "traefik_service_requests_total", "service", MatchPrefix
	case TrafficPrometheus:
		if t.Metric == "" || t.Label == "" {
			d.fail(field, "kind prometheus needs a metric and a label")
		}
		if t.Match == "" {
			t.Match = MatchNamespace
		}
		if t.Match != MatchNamespace && t.Match != MatchPrefix {
			d.fail(field+".match", "%q: namespace or prefix", t.Match)
		}
	default:
		d.fail(field+".kind", "%q: ingress-nginx, traefik or prometheus", t.Kind)
	}
}

// trafficBounds fills and checks the interval, timeout and size bound.
func (d *decoder) trafficBounds(t *Traffic, field string) {
	if t.Interval.Duration == 0 {
		t.Interval.Duration = DefaultTrafficInterval
	}
	if t.Timeout.Duration == 0 {
		t.Timeout.Duration = min(DefaultTrafficTimeout, t.Interval.Duration)
	}
	if t.MaxBytes.Bytes == 0 {
		t.MaxBytes.Bytes = DefaultTrafficMaxBytes
	}
	if t.Interval.Duration < 10*time.Second {
		d.fail(field+".interval", "at least 10s, got %s", t.Interval.Duration)
	}
	if t.Timeout.Duration <= 0 || t.Timeout.Duration > t.Interval.Duration {
		d.fail(field+".timeout", "%s must be positive and at most the interval", t.Timeout.Duration)
	}
	if t.MaxBytes.Bytes < 0 || t.MaxBytes.Bytes > 1<<30 {
		d.fail(field+".max_bytes", "at most 1Gi")
	}
}
