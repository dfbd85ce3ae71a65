package forge

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/forgetest"
	"github.com/arbordev/arbor/internal/gittest"
)

// TestGiteaPaging lists a real Gitea's pull requests two to a page: every
// one is listed by following its Link headers, and an unchanged listing of
// several pages is still reported unchanged.
func TestGiteaPaging(t *testing.T) {
	f := forgetest.Gitea(t)
	repo := f.CreateRepo(t, t.Name())
	dir := t.TempDir()
	gittest.Run(t, dir, "init", "-q", "-b", "main")
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		gittest.Run(t, dir, "add", name)
		gittest.Run(t, dir, "commit", "-q", "-m", name)
	}
	write("README")
	branches := []string{"b1", "b2", "b3", "b4", "b5"}
	for _, b := range branches {
		gittest.Run(t, dir, "checkout", "-q", "-b", b, "main")
		write(b)
	}
	f.Push(t, dir, repo, append([]string{"main"}, branches...)...)
	for _, b := range branches {
		openPR(t, f, repo, b)
	}

	fg, err := New(Options{Type: Gitea, URL: f.URL, Repo: repo.FullName, Token: f.Token(), App: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	g := fg.(*giteaForge)
	g.pageSize = 2
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := g.ListPullRequests(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range l.PullRequests {
		seen[p.HeadBranch] = true
	}
	if len(l.PullRequests) != len(branches) || len(seen) != len(branches) {
		t.Fatalf("listed %+v, want the %d pull requests over 3 pages", l.PullRequests, len(branches))
	}
	again, err := g.ListPullRequests(ctx, l.ETag)
	if err != nil || !again.NotModified {
		t.Errorf("unchanged listing of 3 pages: %+v, %v; want NotModified", again, err)
	}
}

// openPR opens a pull request of branch into main, waiting for Gitea to
// have recorded the pushed branch (it does so in a background queue).
func openPR(t *testing.T, f *forgetest.Forge, repo forgetest.Repo, branch string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := f.Do("POST", "/repos/"+repo.FullName+"/pulls", map[string]any{"head": branch, "base": "main", "title": branch}, nil)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("open a pull request of %s: %v", branch, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
