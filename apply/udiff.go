package apply

import (
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// maxDiffCells bounds the work of one diff (lines before × lines after);
// beyond it the two texts are shown as one replaced block.
const maxDiffCells = 4 << 20

// unifiedDiff returns a unified diff of a and b with ctx lines of context, or
// "" when they are equal.
func unifiedDiff(fromName, toName, a, b string, ctx int) string {
	if a == b {
		return ""
	}
	al, bl := lines(a), lines(b)
	if len(al)*len(bl) > maxDiffCells {
		return replaced(fromName, toName, al, bl)
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: al, B: bl, FromFile: fromName, ToFile: toName, Context: ctx})
	if err != nil { // only a failed write to its strings.Builder
		return replaced(fromName, toName, al, bl)
	}
	return d
}

// lines splits text into lines that keep their "\n", as difflib writes them.
// (difflib.SplitLines adds an empty last line, which would show as context.)
func lines(s string) []string {
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	l := strings.SplitAfter(s, "\n")
	return l[:len(l)-1] // the empty string after the last "\n"
}

// replaced writes a as deleted and b as added, in one hunk.
func replaced(fromName, toName string, a, b []string) string {
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n@@ -1,%d +1,%d @@\n", fromName, toName, len(a), len(b))
	for _, l := range a {
		out.WriteString("-" + l)
	}
	for _, l := range b {
		out.WriteString("+" + l)
	}
	return out.String()
}
