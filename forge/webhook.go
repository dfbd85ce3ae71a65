package forge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/arbordev/arbor/internal/sigcheck"
)

// Event kinds.
const (
	KindPullRequest = "pull_request" // GitLab: merge request
	KindPush        = "push"         // a branch moved, was created or deleted
	KindPing        = "ping"         // the forge tests the webhook
	KindOther       = "other"        // verified, but nothing arbor acts on
)

// Pull request actions, in GitHub's words; each forge's own are mapped to them.
const (
	ActionOpened      = "opened"
	ActionReopened    = "reopened"
	ActionSynchronize = "synchronize" // new commits on the head branch
	// ActionLabeled: labels were added. Gitea says only that the labels
	// changed ("label_updated"), which is mapped here too: read Labels.
	ActionLabeled   = "labeled"
	ActionUnlabeled = "unlabeled"
	ActionClosed    = "closed" // closed without merging
	ActionMerged    = "merged"
	ActionEdited    = "edited" // title, body, base, or draft state changed
	ActionOther     = "other"
)

// Event is what arbor reads of a verified webhook delivery.
type Event struct {
	Forge      Type
	Kind       string // Kind*
	Repository string // owner/name or group/…/name, as the forge names it

	// Pull request events.
	Action     string // Action*
	Number     int64  // GitHub and Gitea number, GitLab iid
	HeadBranch string
	HeadSHA    string
	SameRepo   bool // the head branch is in the repository (not a fork)
	Draft      bool
	Labels     []string // every label the pull request has after the event

	// Push events (and branch deletions).
	Branch  string // the branch pushed, without refs/heads/
	After   string // its new head; "" when Deleted
	Deleted bool
}

// Errors ReadEvent returns, for the caller's HTTP status.
var (
	ErrUnverified = errors.New("webhook signature or token missing or wrong")
	ErrNoSecret   = errors.New("no webhook secret is configured")
	ErrTooLarge   = errors.New("webhook body too large")
)

// DefaultMaxWebhookBytes bounds a webhook body when ReadEvent is given 0.
const DefaultMaxWebhookBytes = 2 << 20

// ReadEvent reads, verifies and parses one delivery. kind "" guesses the
// forge from the request's headers. The body is read up to maxBytes (0:
// DefaultMaxWebhookBytes) and parsed only once verified with secret.
func ReadEvent(r *http.Request, kind Type, secret []byte, maxBytes int64) (Event, error) {
	if kind == "" {
		var ok bool
		if kind, ok = GuessType(r.Header); !ok {
			return Event{}, errors.New("webhook: cannot tell the forge from the headers")
		}
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxWebhookBytes
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
	if err != nil {
		return Event{}, fmt.Errorf("webhook: read body: %w", err)
	}
	if int64(len(body)) > maxBytes {
		return Event{}, fmt.Errorf("%w: over %d bytes", ErrTooLarge, maxBytes)
	}
	if err := Verify(kind, r.Header, body, secret); err != nil {
		return Event{}, err
	}
	return ParseEvent(kind, r.Header, body)
}

// Verify checks a delivery's signature (GitHub: X-Hub-Signature-256; Gitea:
// X-Gitea-Signature, or the X-Hub-Signature-256 it also sends) or token
// (GitLab: X-Gitlab-Token) against secret, in constant time.
func Verify(kind Type, h http.Header, body, secret []byte) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	ok := false
	switch kind {
	case GitHub:
		ok = sigcheck.HMAC(h.Get("X-Hub-Signature-256"), "sha256=", body, secret)
	case Gitea:
		if sig := h.Get("X-Gitea-Signature"); sig != "" {
			ok = sigcheck.HMAC(sig, "", body, secret)
		} else {
			ok = sigcheck.HMAC(h.Get("X-Hub-Signature-256"), "sha256=", body, secret)
		}
	case GitLab:
		ok = sigcheck.Token(h.Get("X-Gitlab-Token"), secret)
	default:
		return fmt.Errorf("webhook: unknown forge %q", kind)
	}
	if !ok {
		return ErrUnverified
	}
	return nil
}

// Sign returns the hex HMAC-SHA-256 of body with secret, as GitHub and Gitea
// sign deliveries (GitHub prefixes it with "sha256=").
func Sign(body, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// GuessType tells the forge from a delivery's headers. Gitea sends GitHub's
// event header too, so its own is looked at first.
func GuessType(h http.Header) (Type, bool) {
	switch {
	case h.Get("X-Gitea-Event") != "":
		return Gitea, true
	case h.Get("X-Gitlab-Event") != "" || h.Get("X-Gitlab-Token") != "":
		return GitLab, true
	case h.Get("X-GitHub-Event") != "":
		return GitHub, true
	}
	return "", false
}

// ParseEvent parses a verified delivery's body. An event arbor does not act
// on is KindOther, not an error; a body that is not what the forge sends for
// its event is an error.
func ParseEvent(kind Type, h http.Header, body []byte) (Event, error) {
	body, err := formPayload(h, body)
	if err != nil {
		return Event{}, err
	}
	var ev Event
	switch kind {
	case GitHub:
		ev, err = parseGitHub(h.Get("X-GitHub-Event"), body)
	case Gitea:
		ev, err = parseGitea(h.Get("X-Gitea-Event"), body)
	case GitLab:
		ev, err = parseGitLab(h.Get("X-Gitlab-Event"), body)
	default:
		return Event{}, fmt.Errorf("webhook: unknown forge %q", kind)
	}
	if err != nil {
		return Event{}, fmt.Errorf("webhook: %s: %w", kind, err)
	}
	ev.Forge = kind
	return ev, nil
}

// formPayload unwraps GitHub's and Gitea's form content type, where the JSON
// is the "payload" field.
func formPayload(h http.Header, body []byte) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		return nil, errors.New("webhook: form body has no payload field")
	}
	return []byte(form.Get("payload")), nil
}

// zeroSHA reports whether sha is the all-zero id forges send for a deleted ref.
func zeroSHA(sha string) bool {
	return sha != "" && strings.Trim(sha, "0") == ""
}

// pushEvent fills a push from its ref and new head; a tag push is KindOther.
func pushEvent(repo, ref, after string, deleted bool) Event {
	branch, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok || branch == "" {
		return Event{Kind: KindOther, Repository: repo}
	}
	ev := Event{Kind: KindPush, Repository: repo, Branch: branch, After: after, Deleted: deleted || zeroSHA(after)}
	if ev.Deleted {
		ev.After = ""
	}
	return ev
}

// deleteEvent is GitHub's and Gitea's "delete" event: ref is the short name.
func deleteEvent(repo, ref, refType string) Event {
	if refType != "branch" || ref == "" {
		return Event{Kind: KindOther, Repository: repo}
	}
	return Event{Kind: KindPush, Repository: repo, Branch: strings.TrimPrefix(ref, "refs/heads/"), Deleted: true}
}
