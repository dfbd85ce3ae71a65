package schema

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SafeText quotes what a terminal would act on rather than show: control
// characters (C0, DEL, C1: escape sequences, cursor moves, OSC 52 clipboard
// writes, and newlines that would forge a line of output), bidirectional
// overrides that reorder what is read, and bytes that are not UTF-8. Each
// becomes a Go escape such as \x1b or \u202e; everything else is unchanged.
// Every text output of a finding goes through it, and the CLI passes its
// error messages through it too: keys, values and file names come from a
// branch, which is untrusted. JSON output needs no such care: the encoder
// escapes control characters itself.
func SafeText(s string) string {
	if !needsQuoting(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// SafeLines is SafeText for a message of several lines: its newlines stay.
func SafeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = SafeText(l)
	}
	return strings.Join(lines, "\n")
}

func needsQuoting(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
			return true
		}
		i += size
	}
	return false
}

// unsafeRune: control characters and the bidirectional formatting
// characters (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}
