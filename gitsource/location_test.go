package gitsource

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseLocation(t *testing.T) {
	cases := []struct {
		in                string
		local, ssh        bool
		host, repo, shown string
	}{
		{in: "https://GitHub.com/Acme/Shop.git", host: "github.com", repo: "acme/shop"},
		{in: "http://u:hunter22@git.example.com:3000/a/b/", host: "git.example.com", repo: "a/b", shown: "http://git.example.com:3000/a/b/"},
		{in: "ssh://git@git.example.com:2222/acme/shop.git", ssh: true, host: "git.example.com", repo: "acme/shop"},
		{in: "git@github.com:acme/shop.git", ssh: true, host: "github.com", repo: "acme/shop"},
		{in: "github.com:acme/shop", ssh: true, host: "github.com", repo: "acme/shop"},
		{in: "file:///srv/git/shop.git", repo: "/srv/git/shop.git"},
		{in: "/srv/git/shop", local: true, repo: "/srv/git/shop"},
		{in: "./a:b/c", local: true},
	}
	for _, c := range cases {
		l, err := parseLocation(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if l.local != c.local || l.ssh != c.ssh || l.host != c.host || (c.repo != "" && l.repo != c.repo) {
			t.Errorf("%s: got local=%v ssh=%v host=%q repo=%q", c.in, l.local, l.ssh, l.host, l.repo)
		}
		if c.shown != "" && l.String() != c.shown {
			t.Errorf("%s: shown as %q, want %q", c.in, l.String(), c.shown)
		}
		if strings.Contains(l.String(), "hunter22") {
			t.Errorf("%s: String leaks the password", c.in)
		}
	}
	for _, bad := range []string{"", "  ", "ftp://x/y", "https:///nohost", "http://u:p@[::1/x"} {
		_, err := parseLocation(bad)
		if err == nil {
			t.Errorf("%q: accepted", bad)
		} else if strings.Contains(err.Error(), ":p@") {
			t.Errorf("%q: error leaks the password: %v", bad, err)
		}
	}
}

func TestLocationMatching(t *testing.T) {
	l := mustLocation(t, "https://git.example.com/forge/acme/shop.git")
	for _, u := range []string{"git@git.example.com:forge/acme/shop.git", "ssh://git@GIT.example.com:2222/forge/acme/shop", "https://git.example.com/forge/acme/shop/"} {
		if !l.matchesURL(u) {
			t.Errorf("%s should match", u)
		}
	}
	for _, u := range []string{"https://other.example.com/forge/acme/shop.git", "https://git.example.com/acme/shop.git", "", "/forge/acme/shop"} {
		if l.matchesURL(u) {
			t.Errorf("%s should not match", u)
		}
	}
	if !l.matchesFullName("Acme/Shop") || !l.matchesFullName("forge/acme/shop") || l.matchesFullName("cme/shop") || l.matchesFullName("") {
		t.Error("full-name matching is wrong")
	}
}

// TestConcurrentReadsAndFetch reads trees from many goroutines while a
// fetch runs; with -race it checks the locking around go-git's storage.
func TestConcurrentReadsAndFetch(t *testing.T) {
	f := newRemoteFixture(t, Options{})
	ctx := testCtx(t)
	branches, _, err := f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.src.Fetch(ctx, branches); err != nil {
		t.Fatal(err)
	}
	tree, err := f.src.Tree(ctx, branches["main"])
	if err != nil {
		t.Fatal(err)
	}
	next := f.work.commitFile("dir/sub/file.txt", "version 2\n")
	f.work.git("push", "-q", "origin", "main")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if err := fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() && d.Type().IsRegular() {
						_, err = fs.ReadFile(tree, p)
					}
					return err
				}); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	fetchErr := f.src.Fetch(context.WithoutCancel(ctx), map[string]string{"main": next})
	wg.Wait()
	if fetchErr != nil {
		t.Fatal(fetchErr)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.src.Tree(ctx, next); err != nil {
		t.Fatal(err)
	}
}

func TestCancelledContext(t *testing.T) {
	f := newRemoteFixture(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := f.src.ListBranches(ctx); err == nil {
		t.Error("ListBranches with a cancelled context succeeded")
	}
	if err := f.src.Fetch(ctx, map[string]string{"main": f.work.git("rev-parse", "main")}); err == nil {
		t.Error("Fetch with a cancelled context succeeded")
	}
	if _, err := f.src.Tree(ctx, f.work.git("rev-parse", "main")); err == nil {
		t.Error("Tree with a cancelled context succeeded")
	}
}

// TestHungServerRespectsContext: a server that never answers must not hold
// a listing past its context's deadline.
func TestHungServerRespectsContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	src, err := Open(Options{App: "hung", Repo: srv.URL + "/x.git", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, _, err := src.ListBranches(ctx); done <- err }()
	outer, cancelOuter := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelOuter()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("listing from a hung server: err = %v, want context.DeadlineExceeded", err)
		}
	case <-outer.Done():
		t.Fatal("listing ignored its context's deadline")
	}
}
