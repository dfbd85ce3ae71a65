package forge

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// giteaDescriptionMax bounds a Gitea commit status description (a TEXT
// column; kept at GitLab's bound so the three forges read alike).
const giteaDescriptionMax = 255

// giteaForge talks to Gitea's API v1 (/api/v1). Gitea sends no ETag on its
// API and no rate-limit headers: its listings are compared by content, which
// still spares the caller the work, though not the request.
type giteaForge struct {
	common
	repo     string // escaped owner/name
	pageSize int    // Gitea's default MAX_RESPONSE_ITEMS; a lower setting still pages by Link
}

func newGitea(o Options) (Forge, error) {
	if o.URL == "" {
		return nil, fmt.Errorf("forge: gitea needs its url")
	}
	base, err := apiBase(o.URL, "", "/api/v1")
	if err != nil {
		return nil, err
	}
	c := newClient(Gitea, base, o, func(h http.Header, tok string) { h.Set("Authorization", "token "+tok) },
		map[string]string{"Accept": "application/json"})
	return &giteaForge{common: newCommon(c, o.App), repo: repoPath(o.Repo), pageSize: 50}, nil
}

func (g *giteaForge) Type() Type { return Gitea }

// giteaPull is the part of Gitea's PullRequest that arbor reads (GitHub's
// shape with repo_id on each side).
type giteaPull struct {
	Number  int64   `json:"number"`
	State   string  `json:"state"`
	Draft   bool    `json:"draft"`
	HTMLURL string  `json:"html_url"`
	Labels  []label `json:"labels"`
	Head    struct {
		Ref    string `json:"ref"`
		SHA    string `json:"sha"`
		RepoID int64  `json:"repo_id"`
	} `json:"head"`
	Base struct {
		RepoID int64 `json:"repo_id"`
	} `json:"base"`
}

type label struct {
	Name string `json:"name"`
}

func labelNames(ls []label) []string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return out
}

func (g *giteaForge) ListPullRequests(ctx context.Context, etag string) (Listing, error) {
	return listOpenPulls(ctx, g.c, "gitea", "/repos/"+g.repo+"/pulls", pager{"page", "limit", g.pageSize}, etag,
		func(p giteaPull) PullRequest {
			return PullRequest{Number: p.Number, HeadBranch: p.Head.Ref, HeadSHA: p.Head.SHA, Labels: labelNames(p.Labels),
				Draft: p.Draft, State: p.State, URL: p.HTMLURL, SameRepo: p.Head.RepoID != 0 && p.Head.RepoID == p.Base.RepoID}
		})
}

func (g *giteaForge) SetStatus(ctx context.Context, sha string, s Status) error {
	return g.setStatus(ctx, sha, s, func(ctx context.Context, sha string, s Status) error {
		_, err := g.c.decode(ctx, http.MethodPost, "/repos/"+g.repo+"/statuses/"+url.PathEscape(sha), nil, map[string]string{
			"state": string(s.State), "context": s.Context, "target_url": s.TargetURL,
			"description": Description(s.Description, giteaDescriptionMax),
		}, nil)
		return err
	})
}

func (g *giteaForge) UpsertComment(ctx context.Context, number int64, body string) (CommentResult, error) {
	return g.upsertComment(ctx, g, number, body)
}

// ghComment is a GitHub or Gitea issue comment.
type ghComment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
	User struct {
		Login string `json:"login"`
	} `json:"user"`
}

func (g *giteaForge) self(ctx context.Context) (string, error) {
	var u struct {
		Login string `json:"login"`
	}
	_, err := g.c.decode(ctx, http.MethodGet, "/user", nil, nil, &u)
	return u.Login, err
}

// comments reads every comment at once: Gitea's issue comment listing is not paged.
func (g *giteaForge) comments(ctx context.Context, number int64) ([]comment, error) {
	var list []ghComment
	if _, err := g.c.decode(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/issues/%d/comments", g.repo, number), nil, nil, &list); err != nil {
		return nil, err
	}
	out := make([]comment, len(list))
	for i, c := range list {
		out[i] = comment{ID: c.ID, Author: c.User.Login, Body: c.Body}
	}
	return out, nil
}

func (g *giteaForge) createComment(ctx context.Context, number int64, body string) (int64, error) {
	return createIssueComment(ctx, g.c, g.repo, number, body)
}

func (g *giteaForge) editComment(ctx context.Context, _, id int64, body string) error {
	return editIssueComment(ctx, g.c, g.repo, id, body)
}
