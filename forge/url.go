package forge

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/arbordev/arbor/internal/redact"
)

// scpAddr is git's user@host:path form.
var scpAddr = regexp.MustCompile(`^[A-Za-z0-9._-]+@([A-Za-z0-9.-]+):(.+)$`)

// GuessTypeFromURL tells the forge of a repository or forge address where it
// is obvious from the host: github.com, gitlab.com, codeberg.org, or a host
// whose first label is "github", "gitlab" or "gitea" (gitlab.example.com).
// Anything else needs forge.type in the configuration.
func GuessTypeFromURL(addr string) (Type, bool) {
	web, _, err := splitAddr(addr)
	if err != nil {
		return "", false
	}
	u, _ := url.Parse(web)
	host := strings.ToLower(u.Hostname())
	switch host {
	case "github.com", "www.github.com", "api.github.com":
		return GitHub, true
	case "gitlab.com", "www.gitlab.com":
		return GitLab, true
	case "codeberg.org", "gitea.com":
		return Gitea, true
	}
	first, _, _ := strings.Cut(host, ".")
	switch first {
	case "github":
		return GitHub, true
	case "gitlab":
		return GitLab, true
	case "gitea":
		return Gitea, true
	}
	return "", false
}

// RepoFromURL splits a repository's clone address (https, ssh or scp-like)
// into the forge's web address and the repository's path on it
// (owner/name, group/sub/name), without ".git". When forgeURL is given, the
// repository path is what follows its path (a forge served under a
// sub-path); otherwise the forge is the host's root, on the address's own
// scheme and port for http(s) addresses and on https for ssh ones.
func RepoFromURL(repoURL, forgeURL string) (web, repo string, err error) {
	web, p, err := splitAddr(repoURL)
	if err != nil {
		return "", "", err
	}
	if forgeURL != "" {
		fu, err := url.Parse(forgeURL)
		if err != nil || fu.Host == "" {
			return "", "", fmt.Errorf("forge url %q is not an address", redact.URL(forgeURL))
		}
		prefix := strings.Trim(fu.Path, "/")
		if prefix != "" {
			rest, ok := strings.CutPrefix(p, prefix+"/")
			if !ok {
				return "", "", fmt.Errorf("repository %s is not below the forge url %s", redact.URL(repoURL), redact.URL(forgeURL))
			}
			p = rest
		}
		web = strings.TrimRight(fu.Scheme+"://"+fu.Host+fu.Path, "/")
	}
	repo = strings.TrimSuffix(p, ".git")
	if strings.Count(repo, "/") < 1 || strings.Contains(repo, "//") {
		return "", "", fmt.Errorf("repository %s: path %q is not owner/name", redact.URL(repoURL), repo)
	}
	return web, repo, nil
}

// splitAddr returns the web root (scheme://host[:port]) and the path (no
// leading or trailing "/") of a git address.
func splitAddr(addr string) (web, path string, err error) {
	if m := scpAddr.FindStringSubmatch(addr); m != nil && !strings.Contains(addr, "://") {
		return "https://" + m[1], strings.Trim(m[2], "/"), nil
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("%q is not a forge address", redact.URL(addr))
	}
	switch u.Scheme {
	case "https", "http":
		return u.Scheme + "://" + u.Host, strings.Trim(u.Path, "/"), nil
	case "ssh", "git":
		return "https://" + u.Hostname(), strings.Trim(u.Path, "/"), nil
	}
	return "", "", fmt.Errorf("%q is not a forge address", redact.URL(addr))
}
