package forge

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// comment is one pull request comment as the providers' code hands it over.
type comment struct {
	ID     int64
	Author string
	Body   string
}

// commentAPI is what a provider implements for UpsertComment.
type commentAPI interface {
	self(ctx context.Context) (string, error)
	comments(ctx context.Context, number int64) ([]comment, error)
	createComment(ctx context.Context, number int64, body string) (int64, error)
	editComment(ctx context.Context, number, id int64, body string) error
}

// maxRemembered bounds the comments and statuses a client remembers; past it
// the memory starts again empty (the next write is then sent, not skipped).
const maxRemembered = 4096

// common is the part every provider shares: the HTTP client, the app's
// marker, the login of the token's user, and what was last written (so an
// unchanged comment or status is not sent again).
type common struct {
	c      *client
	marker string

	// upsert serializes UpsertComment: two at once on one pull request
	// would both find no comment and both post one. Comment writes are
	// rare, so one lock for all pull requests costs nothing.
	upsert sync.Mutex

	mu       sync.Mutex
	login    string
	written  map[int64]writtenComment // by pull request number
	statuses map[string][32]byte      // by sha + "\x00" + context
}

type writtenComment struct {
	id  int64
	sum [32]byte
}

func newCommon(c *client, app string) common {
	return common{c: c, marker: Marker(app), written: map[int64]writtenComment{}, statuses: map[string][32]byte{}}
}

// Marker is the hidden first line of app's pull request comment, by which
// arbor finds the comment again.
func Marker(app string) string { return "<!-- arbor:comment app=" + app + " -->" }

func (m *common) RateLimit() RateLimit { return m.c.rateLimit() }

// withMarker returns body starting with the app's marker.
func (m *common) withMarker(body string) string {
	if strings.HasPrefix(body, m.marker+"\n") {
		return body
	}
	return m.marker + "\n" + body
}

// upsertComment is UpsertComment for every provider.
func (m *common) upsertComment(ctx context.Context, api commentAPI, number int64, body string) (CommentResult, error) {
	m.upsert.Lock()
	defer m.upsert.Unlock()
	body = m.withMarker(body)
	sum := sha256.Sum256([]byte(body))
	m.mu.Lock()
	w, known := m.written[number]
	m.mu.Unlock()
	if known && w.sum == sum {
		return CommentResult{ID: w.id, Action: CommentUnchanged}, nil
	}
	if known {
		err := api.editComment(ctx, number, w.id, body)
		if err == nil {
			m.remember(number, w.id, sum)
			return CommentResult{ID: w.id, Action: CommentEdited}, nil
		}
		var fe *Error
		if !errors.As(err, &fe) || fe.StatusCode != http.StatusNotFound {
			return CommentResult{}, err
		}
		// Deleted by someone: look again, and post a new one if need be.
	}
	existing, err := m.find(ctx, api, number)
	if err != nil {
		return CommentResult{}, err
	}
	if existing != nil {
		if existing.Body == body {
			m.remember(number, existing.ID, sum)
			return CommentResult{ID: existing.ID, Action: CommentUnchanged}, nil
		}
		if err := api.editComment(ctx, number, existing.ID, body); err != nil {
			return CommentResult{}, err
		}
		m.remember(number, existing.ID, sum)
		return CommentResult{ID: existing.ID, Action: CommentEdited}, nil
	}
	id, err := api.createComment(ctx, number, body)
	if err != nil {
		return CommentResult{}, err
	}
	m.remember(number, id, sum)
	return CommentResult{ID: id, Action: CommentCreated}, nil
}

// find returns the oldest comment on the pull request that the token's user
// wrote with this app's marker. Another user's comment with the marker is
// never taken: arbor edits only its own words.
func (m *common) find(ctx context.Context, api commentAPI, number int64) (*comment, error) {
	login, err := m.self(ctx, api)
	if err != nil {
		return nil, err
	}
	list, err := api.comments(ctx, number)
	if err != nil {
		return nil, err
	}
	var found *comment
	for i := range list {
		c := &list[i]
		if !strings.EqualFold(c.Author, login) || !strings.HasPrefix(c.Body, m.marker) {
			continue
		}
		if found == nil || c.ID < found.ID {
			found = c
		}
	}
	return found, nil
}

func (m *common) self(ctx context.Context, api commentAPI) (string, error) {
	m.mu.Lock()
	login := m.login
	m.mu.Unlock()
	if login != "" {
		return login, nil
	}
	login, err := api.self(ctx)
	if err != nil {
		return "", fmt.Errorf("the token's user: %w", err)
	}
	if login == "" {
		return "", errors.New("the token's user: the forge named none")
	}
	m.mu.Lock()
	m.login = login
	m.mu.Unlock()
	return login, nil
}

func (m *common) remember(number, id int64, sum [32]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.written) >= maxRemembered {
		clear(m.written)
	}
	m.written[number] = writtenComment{id: id, sum: sum}
}

// setStatus sends s through send unless it is what was last sent for the
// same commit and context.
func (m *common) setStatus(ctx context.Context, sha string, s Status, send func(context.Context, string, Status) error) error {
	if sha == "" || s.Context == "" {
		return errors.New("commit status: sha and context are required")
	}
	switch s.State {
	case StatePending, StateSuccess, StateFailure, StateError:
	default:
		return fmt.Errorf("commit status: unknown state %q", s.State)
	}
	key := sha + "\x00" + s.Context
	sum := sha256.Sum256([]byte(string(s.State) + "\x00" + s.Description + "\x00" + s.TargetURL))
	m.mu.Lock()
	last, ok := m.statuses[key]
	m.mu.Unlock()
	if ok && last == sum {
		return nil
	}
	if err := send(ctx, sha, s); err != nil {
		return err
	}
	m.mu.Lock()
	if len(m.statuses) >= maxRemembered {
		clear(m.statuses)
	}
	m.statuses[key] = sum
	m.mu.Unlock()
	return nil
}
