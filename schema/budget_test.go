package schema

import (
	"fmt"
	"strings"
	"testing"
)

func bomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [lol]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	return b.String()
}

func TestAliasBudget(t *testing.T) {
	long := "s: &s " + strings.Repeat("x", 1<<20) + "\nl: [*s, *s, *s, *s, *s]\n"
	var many strings.Builder
	for i := 0; i < 40; i++ {
		// Each document expands to 10^4 values: well under the budget alone.
		fmt.Fprintf(&many, "---\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [%s]\nc: &c [%s]\nd: [%s]\n",
			strings.Repeat("*a,", 9)+"*a", strings.Repeat("*b,", 9)+"*b", strings.Repeat("*c,", 9)+"*c")
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"billion laughs", bomb(), "bomb.yaml:"},
		{"long strings", long, "the document is too large"},
		{"many documents share the budget", many.String(), "the document is too large"},
		{"too deep", strings.Repeat("[", 300) + strings.Repeat("]", 300), "too deeply nested"},
		{"not yaml", "a: [\n", "bomb.yaml:"},
		{"plain", "a: &a {b: c}\nd: *a\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b AliasBudget
			err := b.CheckYAML("bomb.yaml", []byte(tc.data))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckYAML: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckYAML = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// The .release.yaml loader charges its own walk the same way.
	if _, found := parseDocument("x.yaml", []byte(long)); !strings.Contains(fmt.Sprint(found), "too large") {
		t.Fatalf("parseDocument of a long-string bomb: %v", found)
	}
}
