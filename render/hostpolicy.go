package render

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// DefaultIngressAnnotations are the ingress annotations a template may set
// when the daemon config names none: the common ingress controllers' own,
// less those that run code or reach other services (see deniedAnnotation).
var DefaultIngressAnnotations = []string{
	"nginx.ingress.kubernetes.io/*",
	"traefik.ingress.kubernetes.io/*",
	"cert-manager.io/*",
}

// deniedAnnotation reports whether an annotation of the default allow-list is
// still refused: snippets are configuration the controller executes (for
// every host it serves); external auth and mirroring send requests to an
// address the branch picks; a server alias serves hosts the domain check
// never sees; a canary takes a share of another Ingress's traffic for the
// same host.
func deniedAnnotation(key string) bool {
	name := key[strings.LastIndex(key, "/")+1:]
	if strings.Contains(name, "snippet") {
		return true
	}
	for _, p := range deniedAnnotationPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

var deniedAnnotationPrefixes = []string{
	"auth-url", "auth-signin", "auth-proxy-set-headers", "global-auth", "auth-tls",
	"server-alias", "mirror-", "canary",
}

// checkAnnotations refuses template annotations off the allow-list. A nil
// list allows everything (offline rendering); the daemon always gives one.
func (r *renderer) checkAnnotations(field string, ann map[string]string) error {
	allowed := r.in.Context.IngressAnnotations
	if allowed == nil {
		return nil
	}
	defaults := slices.Equal(allowed, DefaultIngressAnnotations)
	var bad []string
	for k := range ann {
		if !annotationAllowed(k, allowed, defaults) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("%s: annotation %q is not allowed (the daemon config's ingress_annotations allows %s)", field, bad[0], strings.Join(allowed, ", "))
}

// annotationAllowed reports whether key matches allowed; with the default
// list (defaults), the dangerous keys deniedAnnotation names are refused too.
func annotationAllowed(key string, allowed []string, defaults bool) bool {
	if defaults && deniedAnnotation(key) {
		return false
	}
	for _, p := range allowed {
		if ok, _ := path.Match(p, key); ok || p == key {
			return true
		}
	}
	return false
}

// checkHost refuses a host outside the daemon's domain for the app, when the
// daemon locks it: a branch must not claim another environment's host, or any
// host the shared ingress controller serves.
func (r *renderer) checkHost(host string) error {
	c := r.in.Context
	if !c.DomainLocked {
		return nil
	}
	if c.Domain == "" {
		return fmt.Errorf("host %q: the daemon config gives this app no domain, so it may have no hosts", host)
	}
	if !underDomain(host, c.Domain) {
		return fmt.Errorf("host %q is outside the app's domain %q", host, c.Domain)
	}
	return nil
}

// underDomain reports whether host is domain or a name under it.
func underDomain(host, domain string) bool {
	host, domain = strings.ToLower(strings.TrimSuffix(host, ".")), strings.ToLower(strings.TrimSuffix(domain, "."))
	return host == domain || strings.HasSuffix(host, "."+domain)
}
