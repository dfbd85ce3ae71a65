package forge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// GitHub's documented bounds and version.
const (
	githubDescriptionMax = 140
	githubAPIVersion     = "2022-11-28"
	githubPageSize       = 100
)

// githubForge talks to GitHub's REST API (api.github.com, or URL/api/v3 for
// GitHub Enterprise Server).
type githubForge struct {
	common
	repo string // escaped owner/name
}

func newGitHub(o Options) (Forge, error) {
	base := "https://api.github.com"
	if u, err := url.Parse(o.URL); o.URL != "" && (err != nil || !isGitHubCom(u.Host)) {
		if base, err = apiBase(o.URL, "", "/api/v3"); err != nil {
			return nil, err
		}
	}
	c := newClient(GitHub, base, o, func(h http.Header, tok string) { h.Set("Authorization", "Bearer "+tok) },
		map[string]string{"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": githubAPIVersion})
	return &githubForge{common: newCommon(c, o.App), repo: repoPath(o.Repo)}, nil
}

// isGitHubCom reports whether host is github.com's web or API host.
func isGitHubCom(host string) bool {
	switch strings.ToLower(host) {
	case "github.com", "www.github.com", "api.github.com":
		return true
	}
	return false
}

func (g *githubForge) Type() Type { return GitHub }

// githubPull is the part of GitHub's pull request that arbor reads. head.repo
// is null when a fork was deleted.
type githubPull struct {
	Number  int64   `json:"number"`
	State   string  `json:"state"`
	Draft   bool    `json:"draft"`
	HTMLURL string  `json:"html_url"`
	Labels  []label `json:"labels"`
	Head    struct {
		Ref  string `json:"ref"`
		SHA  string `json:"sha"`
		Repo *struct {
			ID int64 `json:"id"`
		} `json:"repo"`
	} `json:"head"`
	Base struct {
		Repo *struct {
			ID int64 `json:"id"`
		} `json:"repo"`
	} `json:"base"`
}

func (p githubPull) sameRepo() bool {
	return p.Head.Repo != nil && p.Base.Repo != nil && p.Head.Repo.ID != 0 && p.Head.Repo.ID == p.Base.Repo.ID
}

func (g *githubForge) ListPullRequests(ctx context.Context, etag string) (Listing, error) {
	return listOpenPulls(ctx, g.c, "github", "/repos/"+g.repo+"/pulls", pager{"page", "per_page", githubPageSize}, etag,
		func(p githubPull) PullRequest {
			return PullRequest{Number: p.Number, HeadBranch: p.Head.Ref, HeadSHA: p.Head.SHA, Labels: labelNames(p.Labels),
				Draft: p.Draft, State: p.State, URL: p.HTMLURL, SameRepo: p.sameRepo()}
		})
}

// listOpenPulls lists the open pull requests at path over its pages (GitHub's
// and Gitea's shared API), each page's items of type T made PullRequests by
// pr; only open ones of the repository itself are kept.
func listOpenPulls[T any](ctx context.Context, c *client, forge, path string, pg pager, etag string, pr func(T) PullRequest) (Listing, error) {
	pages, tag, notModified, err := c.listPages(ctx, path, url.Values{"state": {"open"}}, pg, etag)
	if err != nil || notModified {
		return Listing{ETag: tag, NotModified: notModified}, err
	}
	var out []PullRequest
	for _, body := range pages {
		var list []T
		if err := json.Unmarshal(body, &list); err != nil {
			return Listing{}, fmt.Errorf("%s GET %s: decode answer: %w", forge, path, err)
		}
		for _, item := range list {
			if p := pr(item); p.SameRepo && p.State == "open" {
				out = append(out, p)
			}
		}
	}
	return Listing{PullRequests: out, ETag: tag}, nil
}

func (g *githubForge) SetStatus(ctx context.Context, sha string, s Status) error {
	return g.setStatus(ctx, sha, s, func(ctx context.Context, sha string, s Status) error {
		body := map[string]string{"state": string(s.State), "context": s.Context,
			"description": Description(s.Description, githubDescriptionMax)}
		if s.TargetURL != "" {
			body["target_url"] = s.TargetURL
		}
		_, err := g.c.decode(ctx, http.MethodPost, "/repos/"+g.repo+"/statuses/"+url.PathEscape(sha), nil, body, nil)
		return err
	})
}

func (g *githubForge) UpsertComment(ctx context.Context, number int64, body string) (CommentResult, error) {
	return g.upsertComment(ctx, g, number, body)
}

func (g *githubForge) self(ctx context.Context) (string, error) {
	var u struct {
		Login string `json:"login"`
	}
	_, err := g.c.decode(ctx, http.MethodGet, "/user", nil, nil, &u)
	return u.Login, err
}

func (g *githubForge) comments(ctx context.Context, number int64) ([]comment, error) {
	path := fmt.Sprintf("/repos/%s/issues/%d/comments", g.repo, number)
	pages, _, _, err := g.c.listPages(ctx, path, nil, pager{"page", "per_page", githubPageSize}, "")
	if err != nil {
		return nil, err
	}
	var out []comment
	for _, body := range pages {
		var list []ghComment
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, fmt.Errorf("github GET %s: decode answer: %w", path, err)
		}
		for _, c := range list {
			out = append(out, comment{ID: c.ID, Author: c.User.Login, Body: c.Body})
		}
	}
	return out, nil
}

func (g *githubForge) createComment(ctx context.Context, number int64, body string) (int64, error) {
	return createIssueComment(ctx, g.c, g.repo, number, body)
}

func (g *githubForge) editComment(ctx context.Context, _, id int64, body string) error {
	return editIssueComment(ctx, g.c, g.repo, id, body)
}

// createIssueComment posts a comment on an issue or pull request through the
// issue comments API that GitHub and Gitea share.
func createIssueComment(ctx context.Context, c *client, repo string, number int64, body string) (int64, error) {
	var out ghComment
	_, err := c.decode(ctx, http.MethodPost, fmt.Sprintf("/repos/%s/issues/%d/comments", repo, number), nil, map[string]string{"body": body}, &out)
	return out.ID, err
}

// editIssueComment replaces the text of comment id (GitHub's and Gitea's API).
func editIssueComment(ctx context.Context, c *client, repo string, id int64, body string) error {
	_, err := c.decode(ctx, http.MethodPatch, fmt.Sprintf("/repos/%s/issues/comments/%d", repo, id), nil, map[string]string{"body": body}, nil)
	return err
}
