package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// Type names a forge provider.
type Type string

// The forges arbor knows.
const (
	GitHub Type = "github"
	GitLab Type = "gitlab"
	Gitea  Type = "gitea"
)

// Types lists every provider New accepts.
var Types = []Type{Gitea, GitHub, GitLab}

// Forge is one repository on one forge, as seen through one token.
// Implementations are safe for concurrent use.
type Forge interface {
	// ListPullRequests lists the open pull requests. etag is the ETag of the
	// previous listing ("" for none): when nothing changed since, the result
	// has NotModified set and no PullRequests, and the caller keeps what it
	// had. A listing is whole or an error: never a part of the list.
	ListPullRequests(ctx context.Context, etag string) (Listing, error)
	// SetStatus sets the commit status s.Context on commit sha. Setting what
	// was last set already sends nothing.
	SetStatus(ctx context.Context, sha string, s Status) error
	// UpsertComment makes body the text of this app's comment on pull
	// request number: it edits the comment the token's user wrote earlier
	// with the app's marker (found again after a restart), or posts one when
	// there is none. An unchanged body sends nothing.
	UpsertComment(ctx context.Context, number int64, body string) (CommentResult, error)
	// RateLimit returns the rate limit the forge reported last.
	RateLimit() RateLimit
	// Type is the forge's provider.
	Type() Type
}

// PullRequest is what arbor needs of an open pull request (GitLab: merge request).
type PullRequest struct {
	Number     int64 // GitHub and Gitea number, GitLab iid
	HeadBranch string
	HeadSHA    string
	// SameRepo is true when the head branch is in the repository itself; a
	// fork's pull request runs code arbor must not deploy, and is left out
	// of listings.
	SameRepo bool
	Labels   []string
	Draft    bool
	State    string // "open" for every listed pull request
	URL      string // the pull request's web page
}

// Listing is the result of ListPullRequests.
type Listing struct {
	PullRequests []PullRequest // open, same-repository pull requests
	ETag         string        // pass to the next ListPullRequests
	NotModified  bool          // nothing changed since etag; PullRequests is empty
}

// State is a commit status state, in GitHub's words; each forge maps it to its own.
type State string

// Commit status states.
const (
	StatePending State = "pending"
	StateSuccess State = "success"
	StateFailure State = "failure"
	StateError   State = "error"
)

// Status is a commit status.
type Status struct {
	Context     string // e.g. "arbor/shop"
	State       State
	Description string // one line, cut to the forge's limit
	TargetURL   string // the environment's primary URL
}

// CommentResult says what UpsertComment did.
type CommentResult struct {
	ID     int64  // the comment's (GitLab: note's) id
	Action string // CommentCreated, CommentEdited or CommentUnchanged
}

// UpsertComment actions.
const (
	CommentCreated   = "created"
	CommentEdited    = "edited"
	CommentUnchanged = "unchanged"
)

// RateLimit is the API rate limit a forge reported in its last answer that
// carried one. Known is false until then (Gitea sends none).
type RateLimit struct {
	Known     bool
	Limit     int
	Remaining int
	Reset     time.Time // when Remaining goes back to Limit
}

// Options configure New.
type Options struct {
	Type Type
	// URL is the forge's web address (https://git.example.com); "" means
	// https://github.com for GitHub and https://gitlab.com for GitLab. The
	// API address is derived from it (GitHub Enterprise: URL/api/v3).
	URL string
	// Repo is the repository's path on the forge: owner/name, or
	// group/subgroup/name on GitLab.
	Repo string
	// Token authenticates every request; it is sent in a header only.
	Token string
	// App is the arbor app this client works for: its comment carries a
	// marker with this name, so each app keeps its own comment.
	App string
	// HTTPClient sends the requests; nil means one with a 30 s timeout.
	HTTPClient *http.Client
	// MaxResponseBytes bounds one answer read; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// DefaultMaxResponseBytes bounds one answer of a forge's API.
const DefaultMaxResponseBytes = 8 << 20

// New returns the Forge for o.Type.
func New(o Options) (Forge, error) {
	if o.Repo == "" || strings.Count(strings.Trim(o.Repo, "/"), "/") < 1 {
		return nil, fmt.Errorf("forge: repository %q is not owner/name", o.Repo)
	}
	if o.Token == "" {
		return nil, errors.New("forge: no token")
	}
	if o.App == "" {
		return nil, errors.New("forge: no app name (it marks the app's comment)")
	}
	o.Repo = strings.Trim(o.Repo, "/")
	switch o.Type {
	case Gitea:
		return newGitea(o)
	case GitHub:
		return newGitHub(o)
	case GitLab:
		return newGitLab(o)
	}
	return nil, fmt.Errorf("forge: unknown type %q (want gitea, github or gitlab)", o.Type)
}

// ReadTokenFile reads a token from file, without its surrounding white space.
func ReadTokenFile(file string) (string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("forge token: %w", err)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		return "", fmt.Errorf("forge token: %s is empty", file)
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("forge token: %s holds more than one line", file)
	}
	return tok, nil
}
