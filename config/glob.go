package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Allows reports whether branch passes the filter: it matches an include glob
// (or there is none) and no exclude glob.
func (f BranchFilter) Allows(branch string) bool {
	return MatchBranch(f.Include, f.Exclude, branch)
}

// MatchBranch reports whether branch matches one of include (or include is
// empty) and none of exclude. Invalid globs match nothing; Load rejects them.
func MatchBranch(include, exclude []string, branch string) bool {
	ok := len(include) == 0
	for _, g := range include {
		if globMatch(g, branch) {
			ok = true
			break
		}
	}
	for _, g := range exclude {
		if globMatch(g, branch) {
			return false
		}
	}
	return ok
}

func globMatch(glob, s string) bool {
	re, err := globRegexp(glob)
	return err == nil && re.MatchString(s)
}

func checkGlob(glob string) error {
	if glob == "" {
		return fmt.Errorf("empty glob")
	}
	_, err := globRegexp(glob)
	return err
}

// globRegexp translates a branch glob: `**` matches anything, `*` anything but
// `/`, `?` one character but `/`, `[...]` a character class.
func globRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			if i+1 < len(glob) && glob[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			j := strings.IndexByte(glob[i+1:], ']')
			if j < 0 {
				return nil, fmt.Errorf("glob %q: unclosed '['", glob)
			}
			class := glob[i+1 : i+1+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			if class == "" || class == "^" {
				return nil, fmt.Errorf("glob %q: empty character class", glob)
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("glob %q: %v", glob, err)
	}
	return re, nil
}
