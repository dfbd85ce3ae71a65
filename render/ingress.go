package render

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/arbordev/arbor/schema"
)

// hostRoute sends a host and path prefix to a service port.
type hostRoute struct {
	host    string
	path    string
	service string
	port    int64
	// chart: the service is no service of the template; it must be a
	// Service one of the app's charts renders, whose port is known only
	// once the charts are rendered (resolveChartRoutes).
	chart bool
	app   *app
	field string
}

// ingress-nginx annotations for Release's proxy_* keys.
const (
	annProxyBodySize    = "nginx.ingress.kubernetes.io/proxy-body-size"
	annProxyReadTimeout = "nginx.ingress.kubernetes.io/proxy-read-timeout"
	annProxySendTimeout = "nginx.ingress.kubernetes.io/proxy-send-timeout"
)

// routeHosts works out every host and rule of the environment (docs/release-yaml.md#hostnames-and-routing) and
// the *_INGRESS_HOST/_URL variables they give.
func (r *renderer) routeHosts() error {
	r.scheme = "http"
	if ing := r.apps[0].t.Ingress; ing != nil && ing.TLS != nil && ing.TLS.SecretName != "" {
		r.scheme = "https"
	}
	var routes []hostRoute
	firstHost := map[string]hostRoute{} // service → its first route
	for _, a := range r.apps {
		hr, err := r.appHostRoutes(a)
		if err != nil {
			return err
		}
		for _, h := range hr {
			if _, ok := firstHost[h.service]; !ok {
				firstHost[h.service] = h
			}
		}
		routes = append(routes, hr...)
	}
	for _, a := range r.apps {
		rr, err := r.appRuleRoutes(a)
		if err != nil {
			return err
		}
		for _, h := range rr {
			if _, ok := firstHost[h.service]; !ok {
				firstHost[h.service] = h
			}
		}
		routes = mergeRoutes(routes, rr)
	}
	r.injected = make(map[string]string, 2*len(firstHost))
	for svc, h := range firstHost {
		p := envPrefix(svc)
		r.injected[p+"_INGRESS_HOST"] = h.host
		r.injected[p+"_INGRESS_URL"] = r.url(h)
	}
	for _, h := range routes {
		if !h.chart {
			r.env.URLs = append(r.env.URLs, URL{Service: h.service, URL: r.url(h)})
		}
	}
	r.routes = routes
	return nil
}

func (r *renderer) url(h hostRoute) string {
	u := r.scheme + "://" + h.host
	if h.path != "/" {
		u += strings.TrimRight(h.path, "/")
	}
	return u
}

// envPrefix is a service name as an env var prefix: upper-case, "-" → "_".
func envPrefix(svc string) string {
	return strings.ToUpper(strings.ReplaceAll(svc, "-", "_"))
}

// hostPatterns gives each service its hostname patterns: the template's
// entries, with the environment template's entries replacing a service's.
func hostPatterns(a *app) (map[string][]string, []string) {
	pats := map[string][]string{}
	var order []string
	collect := func(list []map[string]string, replace bool) {
		replaced := map[string]bool{}
		for _, m := range list {
			for _, svc := range sortedKeys(m) {
				if replace && !replaced[svc] {
					replaced[svc] = true
					pats[svc] = nil
				}
				if _, ok := pats[svc]; !ok {
					order = append(order, svc)
				}
				pats[svc] = append(pats[svc], m[svc])
			}
		}
	}
	collect(a.t.Hostnames, false)
	if a.envTmpl != nil {
		collect(a.envTmpl.Hostnames, true)
	}
	return pats, order
}

// appHostRoutes gives an app's services their hosts: the hostnames patterns,
// else the default pattern for each service with a node_port port.
func (r *renderer) appHostRoutes(a *app) ([]hostRoute, error) {
	pats, order := hostPatterns(a)
	var out []hostRoute
	for _, svc := range order {
		s, ok := a.byName[svc]
		if !ok && len(a.t.Charts) > 0 {
			for _, p := range pats[svc] {
				host, err := r.expandHost(a, svc, p)
				if err != nil {
					return nil, fmt.Errorf("hostnames.%s: %w", svc, err)
				}
				out = append(out, hostRoute{host: host, path: "/", service: svc, chart: true, app: a, field: "hostnames." + svc})
			}
			continue
		}
		if !ok && a.external {
			continue
		}
		if !ok {
			return nil, fmt.Errorf("hostnames.%s: no service has this name", svc)
		}
		if s.Static || a.exclude[svc] {
			continue
		}
		port, ok := ingressPort(s, true)
		if !ok {
			// Release gives such a service no host (a worker named in
			// hostnames); validation warns about it.
			continue
		}
		for _, p := range pats[svc] {
			host, err := r.expandHost(a, svc, p)
			if err != nil {
				return nil, fmt.Errorf("hostnames.%s: %w", svc, err)
			}
			out = append(out, hostRoute{host: host, path: "/", service: svc, port: port})
		}
	}
	for _, s := range a.services {
		if _, ok := pats[s.Name]; ok || a.domain == "" {
			continue
		}
		port, ok := ingressPort(s, false)
		if !ok {
			continue
		}
		host, err := r.expandHost(a, s.Name, "${service}-${app}-${env_id}.${domain}")
		if err != nil {
			return nil, fmt.Errorf("services.%s: default hostname: %w", s.Name, err)
		}
		out = append(out, hostRoute{host: host, path: "/", service: s.Name, port: port})
	}
	return out, nil
}

// ingressPort is the service's first node_port port, or with anyPort its
// first port of any type when it has no node_port.
func ingressPort(s *schema.Service, anyPort bool) (int64, bool) {
	for _, p := range s.Ports {
		if p.Type == "node_port" {
			return int64(p.Port), true
		}
	}
	if anyPort && len(s.Ports) > 0 {
		return int64(s.Ports[0].Port), true
	}
	return 0, false
}

// expandHost expands a hostname pattern and checks the result is a DNS name.
func (r *renderer) expandHost(a *app, svc, pattern string) (string, error) {
	host, err := expandVars(pattern, func(n string) (string, bool) {
		switch n {
		case "env_id":
			return r.env.EnvID, true
		case "domain":
			return a.domain, a.domain != ""
		case "app":
			// The environment's app, for imported services too: so their
			// default hosts differ from those of the imported app's own
			// environment of the same branch.
			return r.env.App, true
		case "branch":
			return branchSlug(r.env.Branch), true
		case "service":
			return schema.ObjectName(svc), svc != ""
		}
		return "", false
	}, true)
	if err != nil {
		return "", fmt.Errorf("%q: %w", pattern, err)
	}
	host = strings.ToLower(host)
	if errs := validation.IsDNS1123Subdomain(host); len(errs) > 0 {
		return "", fmt.Errorf("%q gives host %q: %s", pattern, host, errs[0])
	}
	if err := r.checkHost(host); err != nil {
		return "", fmt.Errorf("%q: %w", pattern, err)
	}
	return host, nil
}

// appRuleRoutes turns an app's rules into routes.
func (r *renderer) appRuleRoutes(a *app) ([]hostRoute, error) {
	var out []hostRoute
	for i, rule := range a.t.Rules {
		field := fmt.Sprintf("rules[%d]", i)
		s := r.findService(rule.Service)
		chart := s == nil && len(a.t.Charts) > 0
		if s == nil && a.external && !chart {
			continue
		}
		if s == nil && !chart {
			return nil, fmt.Errorf("%s.service: no service named %q", field, rule.Service)
		}
		var port int64
		if !chart {
			p, ok := ingressPort(s, false)
			if !ok {
				return nil, fmt.Errorf("%s: service %s has no node_port port", field, rule.Service)
			}
			port = p
		}
		path := rule.Path
		if path == "" {
			path = "/"
		}
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("%s.path: %q must start with /", field, path)
		}
		if len(rule.Hostnames) == 0 {
			return nil, fmt.Errorf("%s.hostnames: at least one hostname is required", field)
		}
		var hosts []string
		for _, p := range rule.Hostnames {
			h, err := r.expandHost(a, "", p)
			if err != nil {
				return nil, fmt.Errorf("%s.hostnames: %w", field, err)
			}
			hosts = append(hosts, h)
		}
		for _, h := range hosts {
			out = append(out, hostRoute{host: h, path: path, service: rule.Service, port: port, chart: chart, app: a, field: field + ".service"})
		}
	}
	return out, nil
}

// findService finds a deployed service of any app of the environment.
func (r *renderer) findService(name string) *schema.Service {
	for _, a := range r.apps {
		for _, s := range a.services {
			if s.Name == name {
				return s
			}
		}
	}
	return nil
}

// mergeRoutes adds rule routes, a rule replacing a route of the same host and path.
func mergeRoutes(routes, rules []hostRoute) []hostRoute {
	idx := map[string]int{}
	for i, h := range routes {
		idx[h.host+h.path] = i
	}
	for _, h := range rules {
		if i, ok := idx[h.host+h.path]; ok {
			routes[i] = h
			continue
		}
		idx[h.host+h.path] = len(routes)
		routes = append(routes, h)
	}
	return routes
}

// renderIngress writes the environment's one Ingress, named after the app.
func (r *renderer) renderIngress() error {
	if len(r.routes) == 0 {
		return nil
	}
	main := r.apps[0]
	o := r.newObject(main, "networking.k8s.io/v1", "Ingress", r.env.App, nil)
	spec := obj{}
	ing := main.t.Ingress
	if ing == nil {
		ing = &schema.Ingress{}
	}
	class := ing.ClassName
	if class == "" {
		class = r.in.Context.IngressClass
	}
	if class != "" {
		spec["ingressClassName"] = class
	}
	ann := o["metadata"].(obj)["annotations"].(obj)
	for k, v := range map[string]schema.Scalar{
		annProxyBodySize: ing.ProxyBodySize, annProxyReadTimeout: ing.ProxyReadTimeout, annProxySendTimeout: ing.ProxySendTimeout,
	} {
		if v != "" {
			ann[k] = string(v)
		}
	}
	if err := r.checkAnnotations("ingress.annotations", ing.Annotations); err != nil {
		return err
	}
	for k, v := range ing.Annotations {
		ann[k] = v
	}
	byHost := map[string][]hostRoute{}
	for _, h := range r.routes {
		byHost[h.host] = append(byHost[h.host], h)
	}
	hosts := sortedKeys(byHost)
	rules := make([]any, 0, len(hosts))
	for _, host := range hosts {
		hr := byHost[host]
		sort.SliceStable(hr, func(i, j int) bool {
			if len(hr[i].path) != len(hr[j].path) {
				return len(hr[i].path) > len(hr[j].path)
			}
			return hr[i].path < hr[j].path
		})
		paths := make([]any, len(hr))
		for i, h := range hr {
			paths[i] = obj{
				"path":     h.path,
				"pathType": "Prefix",
				"backend": obj{"service": obj{
					"name": schema.ObjectName(h.service),
					"port": obj{"number": h.port},
				}},
			}
		}
		rules = append(rules, obj{"host": host, "http": obj{"paths": paths}})
	}
	spec["rules"] = rules
	if ing.TLS != nil && ing.TLS.SecretName != "" {
		spec["tls"] = []any{obj{"hosts": anyStrings(hosts), "secretName": ing.TLS.SecretName}}
	}
	o["spec"] = spec
	r.add(o, "")
	return nil
}
