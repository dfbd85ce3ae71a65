package gitsource

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/arbordev/arbor/internal/redact"
)

// location is a parsed repository address: a remote URL, or a path to a
// repository on this machine that is read in place.
type location struct {
	raw   string // as configured; may hold credentials, so never printed
	local bool   // a filesystem path read in place (not file://, which is cached)
	path  string // absolute path when local
	ssh   bool   // ssh:// or scp-like user@host:path
	host  string // lower-case host without port; "" when local
	repo  string // lower-case path without leading/trailing "/" and ".git"
}

// parseLocation classifies s the way git does: "scheme://..." is a URL,
// "[user@]host:path" with the colon before any slash is scp-like ssh, and
// anything else is a local path.
func parseLocation(s string) (location, error) {
	if strings.TrimSpace(s) == "" {
		return location{}, fmt.Errorf("repository address is empty")
	}
	if strings.Contains(s, "://") {
		return parseURL(s)
	}
	colon, slash := strings.Index(s, ":"), strings.Index(s, "/")
	if colon > 0 && (slash < 0 || colon < slash) {
		return parseSCP(s)
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return location{}, fmt.Errorf("repository path %q: %w", s, err)
	}
	return location{raw: s, local: true, path: abs, repo: strings.ToLower(abs)}, nil
}

func parseURL(s string) (location, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the input, which may hold a password.
		return location{}, fmt.Errorf("repository URL %s: not a valid URL", redact.URL(s))
	}
	loc := location{raw: s, host: strings.ToLower(u.Hostname()), repo: repoKey(u.Path)}
	switch u.Scheme {
	case "https", "http", "git":
	case "ssh":
		loc.ssh = true
	case "file":
		loc.host, loc.repo = "", strings.ToLower(filepath.Clean(u.Path))
	default:
		return location{}, fmt.Errorf("repository URL %s: scheme %q not supported (use https, http, ssh, git, file or a local path)", redact.URL(s), u.Scheme)
	}
	if loc.host == "" && u.Scheme != "file" {
		return location{}, fmt.Errorf("repository URL %s: no host", redact.URL(s))
	}
	return loc, nil
}

func parseSCP(s string) (location, error) {
	hostPart, path, _ := strings.Cut(s, ":")
	if at := strings.LastIndex(hostPart, "@"); at >= 0 {
		hostPart = hostPart[at+1:]
	}
	if hostPart == "" || path == "" {
		return location{}, fmt.Errorf("repository address %q: expected user@host:path", s)
	}
	return location{raw: s, ssh: true, host: strings.ToLower(hostPart), repo: repoKey(path)}, nil
}

// repoKey normalises a repository path for comparison: lower case, no
// surrounding slashes, no ".git" suffix.
func repoKey(p string) string {
	p = strings.Trim(strings.ToLower(p), "/")
	p = strings.TrimSuffix(p, ".git")
	return strings.Trim(p, "/")
}

// matchesURL reports whether another address (as found in a webhook payload)
// names the same repository: same host and path, ignoring scheme, user,
// port, case and a ".git" suffix.
func (l location) matchesURL(other string) bool {
	if other == "" {
		return false
	}
	o, err := parseLocation(other)
	if err != nil || o.local || l.local {
		return false
	}
	return o.host == l.host && o.repo == l.repo && l.repo != ""
}

// matchesFullName reports whether a forge's "owner/name" (GitHub, Gitea) or
// "group/sub/name" (GitLab) is this repository's path, or its tail when the
// forge is served under a path prefix.
func (l location) matchesFullName(full string) bool {
	full = repoKey(full)
	if full == "" || l.local || l.repo == "" {
		return false
	}
	return l.repo == full || strings.HasSuffix(l.repo, "/"+full)
}

// String is the address safe to print: without any userinfo (redact.URL).
func (l location) String() string {
	return redact.URL(l.raw)
}
