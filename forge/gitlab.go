package forge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

const (
	gitlabDescriptionMax = 255
	gitlabPageSize       = 100
)

// gitlabForge talks to GitLab's REST API v4. Pull requests are merge
// requests (numbered by iid), comments are notes, and the project is named by
// its URL-encoded path. The token goes in Authorization: Bearer, which GitLab
// accepts for personal, project and group access tokens and which Go's HTTP
// client drops on a redirect to another host (a PRIVATE-TOKEN header it would
// forward).
type gitlabForge struct {
	common
	project string // URL-encoded group/name, "/" as %2F
}

func newGitLab(o Options) (Forge, error) {
	base, err := apiBase(o.URL, "https://gitlab.com/api/v4", "/api/v4")
	if err != nil {
		return nil, err
	}
	c := newClient(GitLab, base, o, func(h http.Header, tok string) { h.Set("Authorization", "Bearer "+tok) },
		map[string]string{"Accept": "application/json"})
	return &gitlabForge{common: newCommon(c, o.App), project: url.PathEscape(o.Repo)}, nil
}

func (g *gitlabForge) Type() Type { return GitLab }

type gitlabMR struct {
	IID             int64    `json:"iid"`
	State           string   `json:"state"` // opened, closed, locked, merged
	Draft           bool     `json:"draft"`
	WebURL          string   `json:"web_url"`
	Labels          []string `json:"labels"`
	SourceBranch    string   `json:"source_branch"`
	SHA             string   `json:"sha"`
	SourceProjectID int64    `json:"source_project_id"`
	TargetProjectID int64    `json:"target_project_id"`
}

func (g *gitlabForge) ListPullRequests(ctx context.Context, etag string) (Listing, error) {
	path := "/projects/" + g.project + "/merge_requests"
	pages, tag, notModified, err := g.c.listPages(ctx, path, url.Values{"state": {"opened"}}, pager{"page", "per_page", gitlabPageSize}, etag)
	if err != nil || notModified {
		return Listing{ETag: tag, NotModified: notModified}, err
	}
	var out []PullRequest
	for _, body := range pages {
		var list []gitlabMR
		if err := json.Unmarshal(body, &list); err != nil {
			return Listing{}, fmt.Errorf("gitlab GET %s: decode answer: %w", path, err)
		}
		for _, m := range list {
			pr := PullRequest{Number: m.IID, HeadBranch: m.SourceBranch, HeadSHA: m.SHA, Labels: m.Labels, Draft: m.Draft,
				State: "open", URL: m.WebURL, SameRepo: m.SourceProjectID != 0 && m.SourceProjectID == m.TargetProjectID}
			if pr.SameRepo && m.State == "opened" {
				out = append(out, pr)
			}
		}
	}
	return Listing{PullRequests: out, ETag: tag}, nil
}

// gitlabState maps a status state to GitLab's: it has no "error", and calls
// failure "failed".
func gitlabState(s State) string {
	switch s {
	case StateFailure, StateError:
		return "failed"
	}
	return string(s)
}

func (g *gitlabForge) SetStatus(ctx context.Context, sha string, s Status) error {
	return g.setStatus(ctx, sha, s, func(ctx context.Context, sha string, s Status) error {
		body := map[string]string{"state": gitlabState(s.State), "name": s.Context,
			"description": Description(s.Description, gitlabDescriptionMax)}
		if s.TargetURL != "" {
			body["target_url"] = s.TargetURL
		}
		_, err := g.c.decode(ctx, http.MethodPost, "/projects/"+g.project+"/statuses/"+url.PathEscape(sha), nil, body, nil)
		if sameState(err) {
			return nil
		}
		return err
	})
}

// sameState reports GitLab's refusal to set a state a commit status already
// has ("Cannot transition status via :enqueue from :pending"): what arbor
// wanted holds already.
func sameState(err error) bool {
	var fe *Error
	return errors.As(err, &fe) && fe.StatusCode == http.StatusBadRequest && strings.Contains(fe.Message, "Cannot transition status")
}

func (g *gitlabForge) UpsertComment(ctx context.Context, number int64, body string) (CommentResult, error) {
	return g.upsertComment(ctx, g, number, body)
}

func (g *gitlabForge) self(ctx context.Context) (string, error) {
	var u struct {
		Username string `json:"username"`
	}
	_, err := g.c.decode(ctx, http.MethodGet, "/user", nil, nil, &u)
	return u.Username, err
}

type gitlabNote struct {
	ID     int64  `json:"id"`
	Body   string `json:"body"`
	System bool   `json:"system"`
	Author struct {
		Username string `json:"username"`
	} `json:"author"`
}

func (g *gitlabForge) notesPath(number int64) string {
	return fmt.Sprintf("/projects/%s/merge_requests/%d/notes", g.project, number)
}

func (g *gitlabForge) comments(ctx context.Context, number int64) ([]comment, error) {
	path := g.notesPath(number)
	pages, _, _, err := g.c.listPages(ctx, path, url.Values{"sort": {"asc"}, "order_by": {"created_at"}}, pager{"page", "per_page", gitlabPageSize}, "")
	if err != nil {
		return nil, err
	}
	var out []comment
	for _, body := range pages {
		var list []gitlabNote
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, fmt.Errorf("gitlab GET %s: decode answer: %w", path, err)
		}
		for _, n := range list {
			if !n.System {
				out = append(out, comment{ID: n.ID, Author: n.Author.Username, Body: n.Body})
			}
		}
	}
	return out, nil
}

func (g *gitlabForge) createComment(ctx context.Context, number int64, body string) (int64, error) {
	var n gitlabNote
	_, err := g.c.decode(ctx, http.MethodPost, g.notesPath(number), nil, map[string]string{"body": body}, &n)
	return n.ID, err
}

func (g *gitlabForge) editComment(ctx context.Context, number, id int64, body string) error {
	_, err := g.c.decode(ctx, http.MethodPut, fmt.Sprintf("%s/%d", g.notesPath(number), id), nil, map[string]string{"body": body}, nil)
	return err
}
