package schema

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxGlobLen bounds a branch pattern: patterns come from branches, which are
// untrusted, and a git branch name is rarely longer than a hundred bytes.
const maxGlobLen = 1024

// Glob is a branch pattern, compiled once when the file that holds it is
// loaded. It is the one matcher for every branch pattern arbor reads: the
// daemon config's branches filter, the template's branches filter and
// environment_templates[].branches. Its syntax is documented in
// docs/release-yaml.md#branch-patterns.
//
// The zero Glob matches nothing.
type Glob struct {
	pattern string
	re      *regexp.Regexp
}

// ParseGlob compiles a branch pattern.
func ParseGlob(pattern string) (Glob, error) {
	re, err := globRegexp(pattern)
	if err != nil {
		return Glob{}, fmt.Errorf("branch pattern %q: %w", pattern, err)
	}
	return Glob{pattern: pattern, re: re}, nil
}

// MustGlob is ParseGlob for patterns written in code; it panics on a bad one.
func MustGlob(pattern string) Glob {
	g, err := ParseGlob(pattern)
	if err != nil {
		panic(err)
	}
	return g
}

// Match reports whether branch (a name such as feature/login, without
// refs/heads/) matches the whole pattern.
func (g Glob) Match(branch string) bool { return g.re != nil && g.re.MatchString(branch) }

// String returns the pattern as written.
func (g Glob) String() string { return g.pattern }

// Globs is a list of branch patterns.
type Globs []Glob

// ParseGlobs compiles each pattern; the error names the first bad one.
func ParseGlobs(patterns ...string) (Globs, error) {
	out := make(Globs, 0, len(patterns))
	for _, p := range patterns {
		g, err := ParseGlob(p)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// MatchAny reports whether any pattern matches branch.
func (gs Globs) MatchAny(branch string) bool {
	for _, g := range gs {
		if g.Match(branch) {
			return true
		}
	}
	return false
}

// BranchFilter chooses which branches get environments: a branch passes when
// it matches an include pattern (or there is none) and no exclude pattern.
// The daemon config and the template both write it as
// {include: [pattern], exclude: [pattern]}.
type BranchFilter struct {
	Include Globs `yaml:"include,omitempty" json:"include,omitempty"`
	Exclude Globs `yaml:"exclude,omitempty" json:"exclude,omitempty"`
}

// Allows reports whether branch passes the filter. A nil filter allows every branch.
func (f *BranchFilter) Allows(branch string) bool {
	if f == nil {
		return true
	}
	return (len(f.Include) == 0 || f.Include.MatchAny(branch)) && !f.Exclude.MatchAny(branch)
}

// UnmarshalYAML compiles the pattern. A value that is not a string is a type
// error at its line; a string that does not compile is kept, matching
// nothing, and reported with its exact position by the checks that follow
// decoding (Err).
func (g *Glob) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a branch pattern must be a string", n.Line)}}
	}
	*g = Glob{pattern: n.Value}
	g.re, _ = globRegexp(n.Value)
	return nil
}

// Err returns why the pattern does not compile, or nil.
func (g Glob) Err() error {
	if g.re != nil {
		return nil
	}
	_, err := ParseGlob(g.pattern)
	return err
}

// MarshalYAML writes the pattern as written.
func (g Glob) MarshalYAML() (any, error) { return g.pattern, nil }

// MarshalJSON writes the pattern as a JSON string.
func (g Glob) MarshalJSON() ([]byte, error) { return json.Marshal(g.pattern) }

// UnmarshalJSON reads and compiles a pattern; a bad one is an error.
func (g *Glob) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	parsed, err := ParseGlob(s)
	if err != nil {
		return err
	}
	*g = parsed
	return nil
}

// globRegexp translates a pattern into an anchored regular expression. Go's
// regexp runs in time linear in the branch name whatever the pattern, which
// matters because patterns come from branches.
func globRegexp(glob string) (*regexp.Regexp, error) {
	switch {
	case glob == "":
		return nil, fmt.Errorf("empty pattern")
	case len(glob) > maxGlobLen:
		return nil, fmt.Errorf("longer than %d bytes", maxGlobLen)
	case !utf8.ValidString(glob):
		return nil, fmt.Errorf("not valid UTF-8")
	}
	var b strings.Builder
	b.WriteString(`^`)
	for i := 0; i < len(glob); {
		switch c := glob[i]; c {
		case '*':
			n := len(glob[i:]) - len(strings.TrimLeft(glob[i:], "*"))
			if n > 1 {
				b.WriteString(`.*`)
			} else {
				b.WriteString(`[^/]*`)
			}
			i += n
		case '?':
			b.WriteString(`[^/]`)
			i++
		case '[':
			class, n, err := globClass(glob[i:])
			if err != nil {
				return nil, err
			}
			b.WriteString(class)
			i += n
		case '\\':
			return nil, fmt.Errorf(`'\' cannot occur in a branch name (git forbids it), so patterns have no escapes`)
		default:
			r, size := utf8.DecodeRuneInString(glob[i:])
			b.WriteString(regexp.QuoteMeta(string(r)))
			i += size
		}
	}
	b.WriteString(`$`)
	return regexp.Compile(b.String())
}

// globClass translates the bracket expression at the start of s ("[...]")
// and returns it with the number of bytes it took. A class matches one
// character and never "/", whether negated or not.
func globClass(s string) (string, int, error) {
	i := 1
	negate := i < len(s) && (s[i] == '!' || s[i] == '^')
	if negate {
		i++
	}
	var ranges [][2]rune
	for first := true; ; first = false {
		if i >= len(s) {
			return "", 0, fmt.Errorf("unclosed '['")
		}
		if s[i] == ']' && !first {
			i++
			break
		}
		lo, size := utf8.DecodeRuneInString(s[i:])
		i += size
		hi := lo
		if i+1 < len(s) && s[i] == '-' && s[i+1] != ']' {
			hi, size = utf8.DecodeRuneInString(s[i+1:])
			i += 1 + size
			if hi < lo {
				return "", 0, fmt.Errorf("range %c-%c is reversed", lo, hi)
			}
		}
		ranges = append(ranges, [2]rune{lo, hi})
	}
	class := classRegexp(ranges, negate)
	if class == "[]" {
		return "", 0, fmt.Errorf("character class %s matches only '/', which a class never matches", s[:i])
	}
	return class, i, nil
}

// classRegexp writes ranges as a regexp character class that excludes "/".
func classRegexp(ranges [][2]rune, negate bool) string {
	var b strings.Builder
	b.WriteString("[")
	if negate {
		b.WriteString(`^/`)
	}
	for _, r := range ranges {
		if !negate && r[0] <= '/' && '/' <= r[1] {
			// Split the range around "/".
			if r[0] < '/' {
				fmt.Fprintf(&b, `\x{%x}-\x{%x}`, r[0], '/'-1)
			}
			if r[1] > '/' {
				fmt.Fprintf(&b, `\x{%x}-\x{%x}`, '/'+1, r[1])
			}
			continue
		}
		fmt.Fprintf(&b, `\x{%x}-\x{%x}`, r[0], r[1])
	}
	b.WriteString("]")
	return b.String()
}
