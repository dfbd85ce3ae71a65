package forge_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/arbordev/arbor/forge"
	"github.com/arbordev/arbor/internal/forgetest"
)

// TestGiteaTokenScopes checks the scopes docs/forge.md asks for: a
// collaborator's token with write:repository, write:issue and read:user does
// everything arbor does; without write:issue the comment is refused and the
// error says so.
func TestGiteaTokenScopes(t *testing.T) {
	f := forgetest.Gitea(t)
	repo, _, heads := giteaRepo(t, f, "feature")
	pr := f.OpenPR(t, repo, "feature", "main", "Add a feature")
	ctx := ctxT(t)

	user, password := createUser(t, f, "bot"+strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(repo.Name)))
	f.Call(t, http.MethodPut, "/repos/"+repo.FullName+"/collaborators/"+user, map[string]any{"permission": "write"}, nil)

	full := scopedToken(t, f, user, password, "full", "write:repository", "write:issue", "read:user")
	g, err := forge.New(forge.Options{Type: forge.Gitea, URL: f.URL, Repo: repo.FullName, Token: full, App: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := g.ListPullRequests(ctx, ""); err != nil || len(l.PullRequests) != 1 {
		t.Errorf("listing with the documented scopes: %+v, %v", l, err)
	}
	if err := g.SetStatus(ctx, heads["feature"], forge.Status{Context: "arbor/shop", State: forge.StateSuccess}); err != nil {
		t.Errorf("status with the documented scopes: %v", err)
	}
	if r, err := g.UpsertComment(ctx, pr.Number, "hello"); err != nil || r.Action != forge.CommentCreated {
		t.Errorf("comment with the documented scopes: %+v, %v", r, err)
	}

	noIssue := scopedToken(t, f, user, password, "noissue", "write:repository", "read:user")
	g, err = forge.New(forge.Options{Type: forge.Gitea, URL: f.URL, Repo: repo.FullName, Token: noIssue, App: "other"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.UpsertComment(ctx, pr.Number, "hello")
	var fe *forge.Error
	if !errors.As(err, &fe) || fe.StatusCode != http.StatusForbidden || strings.Contains(err.Error(), noIssue) {
		t.Errorf("comment without write:issue: %v; want a 403 naming the request, without the token", err)
	}
}

func createUser(t *testing.T, f *forgetest.Forge, name string) (string, string) {
	t.Helper()
	if len(name) > 39 {
		name = name[:39]
	}
	const password = "a-long-test-password-2"
	f.Call(t, http.MethodPost, "/admin/users", map[string]any{"username": name, "email": name + "@example.test", "password": password, "must_change_password": false}, nil)
	t.Cleanup(func() { f.Call(t, http.MethodDelete, "/admin/users/"+name+"?purge=true", nil, nil) })
	return name, password
}

// scopedToken creates an access token of user with scopes (Gitea takes basic
// auth for this call only).
func scopedToken(t *testing.T, f *forgetest.Forge, user, password, name string, scopes ...string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"name": name, "scopes": scopes})
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/v1/users/%s/tokens", f.URL, user), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		SHA1 string `json:"sha1"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusCreated || tok.SHA1 == "" {
		t.Fatalf("token %s for %s: %s, %v", name, user, resp.Status, err)
	}
	return tok.SHA1
}
