package schema

import (
	"strings"
	"testing"
)

func TestSafeText(t *testing.T) {
	for in, want := range map[string]string{
		"plain: ünïcödé ✓":               "plain: ünïcödé ✓",
		"\x1b[2J\x1b[H":                  `\x1b[2J\x1b[H`,
		"\x1b]52;c;SGVsbG8=\x07":         `\x1b]52;c;SGVsbG8=\x07`,
		"a\nb\r\tc\x7f":                  `a\nb\r\tc\x7f`,
		"c1 \u009b31m":                   `c1 \u009b31m`,
		"bidi \u202eevil\u2066":          `bidi \u202eevil\u2066`,
		"bad \xff\xfe utf-8":             `bad \xff\xfe utf-8`,
		`already \x1b quoted stays text`: `already \x1b quoted stays text`,
	} {
		if got := SafeText(in); got != want {
			t.Errorf("SafeText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := SafeLines("one\x1b\ntwo\x07"); got != "one\\x1b\ntwo\\x07" {
		t.Errorf("SafeLines = %q", got)
	}
}

// TestFindingStringQuotes: a finding's text, built from a key, a value and a
// file name of the branch, carries no control byte.
func TestFindingStringQuotes(t *testing.T) {
	f := Finding{
		Position: Position{File: "evil\x1b[2J.yaml", Line: 3, Column: 1},
		Field:    "services[0].\x1b]52;c;SGVsbG8=\x07",
		Severity: SeverityWarning,
		Message:  "unknown key \u009b31m\nforged.yaml:1:1: error: x",
	}
	s := f.String()
	if strings.ContainsAny(s, "\x1b\x07\n\u009b") {
		t.Errorf("control characters reach the text: %q", s)
	}
	if want := `evil\x1b[2J.yaml:3:1: warning: services[0].\x1b]52;c;SGVsbG8=\x07: unknown key \u009b31m\nforged.yaml:1:1: error: x`; s != want {
		t.Errorf("String() = %s\nwant       %s", s, want)
	}
}
