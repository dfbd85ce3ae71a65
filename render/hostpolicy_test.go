package render

import (
	"strings"
	"testing"
)

// TestDaemonConfinesHostsAndAnnotations renders, as the daemon does (domain
// locked, annotation allow-list on), templates that reach outside: each is an
// error naming what is refused; the same templates render offline.
func TestDaemonConfinesHostsAndAnnotations(t *testing.T) {
	const web = "services: [{name: web, image: x:1, ports: [{type: node_port, port: 80}]}]\n"
	cases := []struct {
		name, tmpl, want string
	}{
		{"literal host elsewhere", web + "hostnames: [{web: shop.example.com}]", `host "shop.example.com" is outside the app's domain "preview.example.net"`},
		{"another environment's host", web + "hostnames: [{web: web-shop-main.preview.example.net}]", ""},
		{"own domain elsewhere", web + "domain: bank.example.com", `is outside the app's domain "preview.example.net"`},
		{"suffix trick", web + "hostnames: [{web: x.evilpreview.example.net}]", "is outside the app's domain"},
		{"snippet", web + "ingress: {annotations: {nginx.ingress.kubernetes.io/server-snippet: 'return 200;'}}", `annotation "nginx.ingress.kubernetes.io/server-snippet" is not allowed`},
		{"external auth", web + "ingress: {annotations: {nginx.ingress.kubernetes.io/auth-url: 'http://10.0.0.1/'}}", `annotation "nginx.ingress.kubernetes.io/auth-url" is not allowed`},
		{"extra host", web + "ingress: {annotations: {nginx.ingress.kubernetes.io/server-alias: shop.example.com}}", `annotation "nginx.ingress.kubernetes.io/server-alias" is not allowed`},
		{"mirrored requests", web + "ingress: {annotations: {nginx.ingress.kubernetes.io/mirror-target: 'http://10.0.0.1/'}}", `annotation "nginx.ingress.kubernetes.io/mirror-target" is not allowed`},
		{"canary", web + "ingress: {annotations: {nginx.ingress.kubernetes.io/canary: 'true'}}", `annotation "nginx.ingress.kubernetes.io/canary" is not allowed`},
		{"unknown controller", web + "ingress: {annotations: {haproxy.org/backend-config-snippet: x}}", `annotation "haproxy.org/backend-config-snippet" is not allowed`},
		{"allowed annotation", web + "ingress: {annotations: {nginx.ingress.kubernetes.io/proxy-body-size: 8m}}", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := Input{Config: configFrom(t, c.tmpl, ""), Context: Context{
				App: "shop", Branch: "feature/x", Commit: strings.Repeat("a", 40), Domain: "preview.example.net",
				DomainLocked: true, IngressAnnotations: DefaultIngressAnnotations,
			}}
			_, err := Render(in)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			in.Context.DomainLocked, in.Context.IngressAnnotations = false, nil
			if _, err := Render(in); err != nil {
				t.Errorf("offline render (nothing locked): %v", err)
			}
		})
	}
}

func TestAnnotationAllowList(t *testing.T) {
	custom := []string{"example.com/*", "nginx.ingress.kubernetes.io/server-snippet"}
	for key, want := range map[string]bool{
		"example.com/x": true,
		"nginx.ingress.kubernetes.io/server-snippet": true, // an allow-list the admin wrote is taken as written
		"nginx.ingress.kubernetes.io/rewrite-target": false,
	} {
		if got := annotationAllowed(key, custom, false); got != want {
			t.Errorf("annotationAllowed(%q, custom) = %v, want %v", key, got, want)
		}
	}
}
