package reconciler

import (
	"testing"

	"github.com/arbordev/arbor/config"
)

// TestNamespaceNamesNeverMeet: where "<app>-<env id>" of two apps of one
// config would be the same name, the app with the shorter name gets a hashed
// one; every other environment keeps the plain name `arbor render` gives.
func TestNamespaceNamesNeverMeet(t *testing.T) {
	apps := []config.App{{Name: "shop"}, {Name: "shop-api"}, {Name: "shop-api-v2"}, {Name: "blog"}}
	plain := map[[2]string]string{
		{"shop", "main"}:        "shop-main",
		{"shop", "apiary"}:      "shop-apiary",
		{"shop-api", "main"}:    "shop-api-main",
		{"shop-api-v2", "main"}: "shop-api-v2-main",
		{"blog", "api-main"}:    "blog-api-main",
	}
	for k, want := range plain {
		if got := namespaceName(apps, k[0], k[1]); got != want {
			t.Errorf("%s@%s: %s, want %s", k[0], k[1], got, want)
		}
	}
	seen := map[string]string{}
	for _, k := range [][2]string{
		{"shop", "api-main"}, {"shop-api", "main"},
		{"shop", "api-v2-main"}, {"shop-api", "v2-main"}, {"shop-api-v2", "main"},
		{"shop", "main"}, {"shop-api", "api-main"},
	} {
		ns := namespaceName(apps, k[0], k[1])
		if other, ok := seen[ns]; ok {
			t.Errorf("%s@%s and %s both get namespace %s", k[0], k[1], other, ns)
		}
		seen[ns] = k[0] + "@" + k[1]
		if len(ns) > 63 {
			t.Errorf("%s@%s: %q is longer than a DNS label", k[0], k[1], ns)
		}
	}
}
