package render

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestEnvID(t *testing.T) {
	for _, c := range []struct{ branch, want string }{
		{"main", "main"},
		{"develop2", "develop2"},
		{"feature/login", "feature-login-df7c7a"},
		{"Feature/Login", "feature-login-" + shortHash("Feature/Login", 6)},
		{"--x--", "x-" + shortHash("--x--", 6)},
		{"///", shortHash("///", 6)},
		{strings.Repeat("a", 40), strings.Repeat("a", 40)},
		{strings.Repeat("a", 41), strings.Repeat("a", 33) + "-" + shortHash(strings.Repeat("a", 41), 6)},
	} {
		got := EnvID(c.branch)
		if got != c.want {
			t.Errorf("EnvID(%q) = %q, want %q", c.branch, got, c.want)
		}
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 || len(got) > 40 {
			t.Errorf("EnvID(%q) = %q is not a label of at most 40: %v", c.branch, got, errs)
		}
	}
	if EnvID("feature/a-b") == EnvID("feature/a_b") {
		t.Error("two branches share an env id")
	}
}

func TestNamespace(t *testing.T) {
	if got := Namespace("shop", "main"); got != "shop-main" {
		t.Errorf("Namespace = %q", got)
	}
	long := Namespace(strings.Repeat("app", 10), EnvID(strings.Repeat("branch-", 10)))
	if len(long) > 63 || len(validation.IsDNS1123Label(long)) > 0 {
		t.Errorf("Namespace too long or invalid: %q", long)
	}
	a := Namespace(strings.Repeat("x", 30), strings.Repeat("y", 33)+"-aaaaaa")
	b := Namespace(strings.Repeat("x", 30), strings.Repeat("y", 33)+"-bbbbbb")
	if a == b {
		t.Errorf("two cut namespaces collide: %q", a)
	}
}

func TestInterpolate(t *testing.T) {
	vars := map[string]envValue{"A": {value: "1"}, "EMPTY": {}, "S": {value: "pw", secret: true}}
	look := func(n string) (envValue, bool) { v, ok := vars[n]; return v, ok }
	for _, c := range []struct {
		in, want string
		secret   bool
	}{
		{"${A}", "1", false},
		{"$A-x", "1-x", false},
		{"${MISSING}", "", false},
		{"${MISSING:-fb}", "fb", false},
		{"${EMPTY:-fb}", "fb", false},
		{"$$A", "$A", false},
		{"a$", "a$", false},
		{"${unclosed", "${unclosed", false},
		{"u:${S}", "u:pw", true},
		{"$1", "$1", false},
	} {
		got := interpolate(c.in, look)
		if got.value != c.want || got.secret != c.secret {
			t.Errorf("interpolate(%q) = %q secret=%v, want %q secret=%v", c.in, got.value, got.secret, c.want, c.secret)
		}
	}
}
