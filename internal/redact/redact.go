// Package redact owns how arbor shows a repository address: every place that
// prints, logs, serves or labels one (the status API and page, logs, metrics,
// errors from git) passes it through URL, and errors that may quote an address
// through Error.
//
// The whole userinfo goes, not only a password: a token is often written as the
// user (https://TOKEN@host/repo.git), which url.URL.Redacted keeps. The user of
// an ssh address goes too; it is rarely secret, but one rule is easier to trust
// than a rule with exceptions.
package redact

import (
	"net/url"
	"strings"
)

// URL returns s without any userinfo. It works on strings that do not parse as
// URLs too (scp-like git addresses, URLs with bad escapes), because an address
// that fails to parse is exactly the one printed in an error.
func URL(s string) string {
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		return scheme + "://" + dropUserinfo(rest)
	}
	if scpLike(s) {
		return dropUserinfo(s)
	}
	return s
}

// dropUserinfo removes "userinfo@" from the start of an authority[/path].
// The userinfo ends at the last "@" before the first "/" (a password may hold
// "@" only escaped, but a careless one is cut whole all the same).
func dropUserinfo(rest string) string {
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		return rest[at+1:]
	}
	return rest
}

// scpLike reports whether s is a git address of the form [user@]host:path.
func scpLike(s string) bool {
	colon := strings.Index(s, ":")
	if colon <= 0 || strings.ContainsAny(s[:colon], "/\\") {
		return false
	}
	return strings.Contains(s[:colon], "@")
}

// Secrets returns the userinfo of s in every form a message may quote it:
// whole, and each part raw and percent-decoded. A password is always a
// secret; a user only when it is long enough to be a token: scrubbing "git"
// from a message would mangle it and hide nothing.
func Secrets(s string) []string {
	info := userinfo(s)
	if info == "" {
		return nil
	}
	var out []string
	user, pass, hasPass := strings.Cut(info, ":")
	if hasPass || len(info) >= minTokenLen {
		out = append(out, info)
	}
	for i, p := range []string{user, pass} {
		if p == "" || (i == 0 && len(p) < minTokenLen) {
			continue
		}
		out = append(out, p)
		if d, err := url.PathUnescape(p); err == nil && d != p {
			out = append(out, d)
		}
	}
	return out
}

// minTokenLen is the shortest user name scrubbed from messages as a secret.
const minTokenLen = 6

func userinfo(s string) string {
	rest := s
	if _, r, ok := strings.Cut(s, "://"); ok {
		rest = r
	} else if !scpLike(s) {
		return ""
	}
	stripped := dropUserinfo(rest)
	if len(stripped) == len(rest) {
		return ""
	}
	return rest[:len(rest)-len(stripped)-1]
}

// Error returns err with every address of addrs, and every secret in them,
// removed from its message. errors.Is and errors.As still see the original.
func Error(err error, addrs ...string) error {
	return rewrite(err, func(msg string) string {
		for _, a := range addrs {
			if r := URL(a); r != a {
				msg = strings.ReplaceAll(msg, a, r)
			}
			msg = mask(msg, Secrets(a))
		}
		return msg
	})
}

// Values returns err with every one of secrets (credentials read from
// files, say) masked in its message.
func Values(err error, secrets ...string) error {
	return rewrite(err, func(msg string) string { return mask(msg, secrets) })
}

func mask(msg string, secrets []string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}

// rewrite wraps err with its message passed through clean, when that changes it.
func rewrite(err error, clean func(string) string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if c := clean(msg); c != msg {
		return &redacted{err: err, msg: c}
	}
	return err
}

type redacted struct {
	err error
	msg string
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
