package workflow

import (
	"fmt"
	"time"

	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// Expiry is whether an environment has expired (docs/release-yaml.md#environments).
type Expiry struct {
	// Expired: no new commit for expires_after, and not kept. The
	// environment is torn down; its branch gets no environment until the
	// next push.
	Expired bool
	// At is when the environment expires (zero: never). The caller checks
	// again then.
	At time.Time
	// Kept: the namespace is annotated arbor.dev/keep: "true"; it never expires.
	Kept bool
}

// CheckExpiry decides whether an environment has expired: expiresAfter is
// its environment template's expires_after ("" never), lastCommit the
// committer time of its branch's newest commit, nsAnnotations its
// namespace's annotations (nil when there is none yet) and now the time.
// Inactivity counts from the commit, not from a deploy, so a branch whose
// newest commit is older than expires_after gets no environment until a push,
// and a restarted daemon decides the same. An extension recorded on the
// namespace (AnnotationExpiresAt) moves the expiry later, never earlier.
func CheckExpiry(expiresAfter string, lastCommit time.Time, nsAnnotations map[string]string, now time.Time) (Expiry, error) {
	if expiresAfter == "" {
		return Expiry{}, nil
	}
	d, err := schema.ParseDuration(expiresAfter)
	if err != nil {
		return Expiry{}, fmt.Errorf("expires_after: %w", err)
	}
	if d <= 0 {
		return Expiry{}, fmt.Errorf("expires_after: %s is not positive", expiresAfter)
	}
	if Kept(nsAnnotations) {
		return Expiry{Kept: true}, nil
	}
	at := lastCommit.Add(d)
	if ext := ExtendedUntil(nsAnnotations); ext.After(at) {
		at = ext // extended through the API (RequestExtend)
	}
	return Expiry{Expired: !now.Before(at), At: at}, nil
}

// Kept reports whether a namespace's annotations keep it from expiring.
func Kept(nsAnnotations map[string]string) bool {
	return nsAnnotations[render.AnnotationKeep] == "true"
}
