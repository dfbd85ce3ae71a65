package render

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Limits on generated names (docs/release-yaml.md#environments).
const (
	maxEnvID     = 40
	maxNamespace = 63
	hashLen      = 6
)

// EnvID returns the environment id of a branch (docs/release-yaml.md#environments): the branch as a DNS
// label, lower-case, with runs of other characters turned into "-", at most 40
// characters. When that changed or cut the branch name, "-" and 6 hex
// characters of the branch's SHA-256 are appended (within the 40), so two
// branches never share an id.
func EnvID(branch string) string {
	return dnsLabel(branch, maxEnvID)
}

// Namespace returns the namespace of an app's environment: "<app>-<envID>",
// made a DNS label of at most 63 characters the same way as EnvID.
func Namespace(app, envID string) string {
	return dnsLabel(app+"-"+envID, maxNamespace)
}

// dnsLabel makes s a DNS label of at most max characters, suffixing a short
// hash of s whenever the label is not exactly s.
func dnsLabel(s string, max int) string {
	slug := slugify(s)
	if slug == s && len(slug) <= max && slug != "" {
		return slug
	}
	suffix := shortHash(s, hashLen)
	room := max - hashLen - 1
	if len(slug) > room {
		slug = strings.TrimRight(slug[:room], "-")
	}
	if slug == "" {
		return suffix
	}
	return slug + "-" + suffix
}

// slugify lower-cases s and turns each run of characters outside [a-z0-9]
// into one "-", trimming dashes at both ends.
func slugify(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	dash := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteByte(c)
			continue
		}
		dash = true
	}
	return b.String()
}

// branchSlug is ${branch} in hostnames: the branch slug, cut to the env-id length.
func branchSlug(branch string) string {
	s := slugify(branch)
	if len(s) > maxEnvID {
		s = strings.TrimRight(s[:maxEnvID], "-")
	}
	return s
}

// shortHash returns the first n hex characters of the SHA-256 of the parts.
func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// cutName cuts a generated object name to max characters, suffixing a short
// hash of the full name when it had to be cut, so names stay unique.
func cutName(name string, max int) string {
	if len(name) <= max {
		return name
	}
	suffix := shortHash(name, hashLen)
	return strings.TrimRight(name[:max-hashLen-1], "-.") + "-" + suffix
}
