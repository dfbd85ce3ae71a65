package gitsource

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"path/filepath"
	"testing"
	"time"
)

func openLocal(t *testing.T, work *workRepo) *Source {
	t.Helper()
	src, err := Open(Options{App: "local", Repo: work.dir})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestLocalListingAndTree(t *testing.T) {
	work := newWorkRepo(t)
	work.git("branch", "feature/x")
	src := openLocal(t, work)
	ctx := testCtx(t)
	if !src.Local() {
		t.Fatal("a directory was not taken as a local repository")
	}
	branches, head, err := src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	main := work.git("rev-parse", "main")
	if want := map[string]string{"main": main, "feature/x": main}; !maps.Equal(branches, want) || head != "main" {
		t.Fatalf("ListBranches = %v, %q; want %v, main", branches, head, want)
	}
	if err := src.Fetch(ctx, branches); err != nil {
		t.Fatal(err)
	}

	// A commit made after Open, then packed by gc into a new pack, is read.
	next := work.commitFile("dir/sub/file.txt", "version 2\n")
	work.git("gc", "-q")
	tree, err := src.Tree(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(tree, "dir/sub/file.txt"); err != nil || string(b) != "version 2\n" {
		t.Fatalf("file at new commit = %q, %v", b, err)
	}
	work.git("branch", "-D", "feature/x") // a packed ref now: deletion rewrites packed-refs
	branches, _, err = src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"main": next}; !maps.Equal(branches, want) {
		t.Fatalf("after commit, gc and deletion: %v; want %v", branches, want)
	}
}

func TestLocalBareAndEmpty(t *testing.T) {
	work := newWorkRepo(t)
	bare := t.TempDir()
	runGit(t, "", "clone", "-q", "--bare", work.dir, bare)
	src, err := Open(Options{App: "bare", Repo: bare})
	if err != nil {
		t.Fatal(err)
	}
	if b, _, err := src.ListBranches(testCtx(t)); err != nil || len(b) != 1 {
		t.Fatalf("bare local repository: %v, %v", b, err)
	}

	empty := t.TempDir()
	runGit(t, empty, "init", "-q")
	src, err = Open(Options{App: "empty", Repo: empty})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.ListBranches(testCtx(t)); !errors.Is(err, ErrNoBranches) {
		t.Fatalf("empty local repository: err = %v, want ErrNoBranches", err)
	}
	if _, err := Open(Options{App: "nothing", Repo: t.TempDir()}); err == nil {
		t.Fatal("Open of a directory that is not a repository succeeded")
	}
}

// waitFor waits on src's trigger until cond holds for the branch listing,
// or ctx ends.
func waitFor(ctx context.Context, t *testing.T, src *Source, what string, cond func(map[string]string) bool) {
	t.Helper()
	for {
		select {
		case <-ctx.Done():
			b, _, err := src.ListBranches(context.Background())
			t.Fatalf("no trigger showed %s before the deadline; listing now: %v, %v", what, b, err)
		case <-src.Triggers():
		}
		b, _, err := src.ListBranches(ctx)
		if err == nil && cond(b) {
			return
		}
	}
}

func TestWatchLocal(t *testing.T) {
	work := newWorkRepo(t)
	src := openLocal(t, work)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	if err := src.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		t.Cleanup(cancel)
		return c
	}

	next := work.commitFile("dir/sub/file.txt", "version 2\n")
	waitFor(deadline(), t, src, "a commit on main", func(b map[string]string) bool { return b["main"] == next })

	work.git("branch", "feature/x")
	waitFor(deadline(), t, src, "new branch feature/x", func(b map[string]string) bool { return b["feature/x"] == next })

	work.git("checkout", "-q", "feature/x")
	onFeature := work.commitFile("feature.txt", "f\n")
	waitFor(deadline(), t, src, "a commit on feature/x", func(b map[string]string) bool { return b["feature/x"] == onFeature })
	work.git("checkout", "-q", "main")

	work.git("branch", "-D", "feature/x")
	waitFor(deadline(), t, src, "deletion of feature/x", func(b map[string]string) bool { _, ok := b["feature/x"]; return !ok })

	work.git("branch", "feature/y")
	work.git("pack-refs", "--all")
	waitFor(deadline(), t, src, "new branch feature/y", func(b map[string]string) bool { _, ok := b["feature/y"]; return ok })
	work.git("branch", "-D", "feature/y")
	waitFor(deadline(), t, src, "deletion of packed feature/y", func(b map[string]string) bool { _, ok := b["feature/y"]; return !ok && len(b) == 1 })
}

func TestWatchRemoteIsNoop(t *testing.T) {
	src, err := Open(Options{App: "r", Repo: "https://git.example.com/a/b.git", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Watch(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// TestLocalRepack reads a local repository, lets git repack it (deleting the
// packs go-git had indexed), and reads again, old and new commits.
func TestLocalRepack(t *testing.T) {
	work := newWorkRepo(t)
	work.git("gc", "-q")
	first := work.git("rev-parse", "HEAD")
	src := openLocal(t, work)
	ctx := testCtx(t)
	tree, err := src.Tree(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadFile(tree, "dir/sub/file.txt"); err != nil {
		t.Fatal(err)
	}
	second := work.commitFile("dir/sub/file.txt", "version 2\n")
	work.git("repack", "-a", "-d", "-q") // replaces the pack read above
	for commit, want := range map[string]string{first: "version 1\n", second: "version 2\n"} {
		tree, err := src.Tree(ctx, commit)
		if err != nil {
			t.Fatalf("after repack, Tree(%s): %v", commit, err)
		}
		if b, err := fs.ReadFile(tree, "dir/sub/file.txt"); err != nil || string(b) != want {
			t.Fatalf("after repack, %s: %q, %v", commit, b, err)
		}
	}
	// An fs.FS taken before the repack keeps working.
	if b, err := fs.ReadFile(tree, "bin/run.sh"); err != nil || len(b) == 0 {
		t.Fatalf("old tree after repack: %q, %v", b, err)
	}
}

// TestLinkedWorktree opens a linked worktree (its .git is a file): refs come
// from the main repository, HEAD from the worktree, and commits made in the
// worktree are seen by Watch.
func TestLinkedWorktree(t *testing.T) {
	work := newWorkRepo(t)
	linked := filepath.Join(t.TempDir(), "linked")
	work.git("worktree", "add", "-q", "-b", "side", linked)
	src, err := Open(Options{App: "linked", Repo: linked})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
	defer cancel()
	branches, head, err := src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(branches) != 2 || head != "side" {
		t.Fatalf("linked worktree: %v, %q; want main and side, HEAD side", branches, head)
	}
	if err := src.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	next := (&workRepo{tb: t, dir: linked}).commitFile("side.txt", "side\n")
	waitFor(ctx, t, src, "a commit in the linked worktree", func(b map[string]string) bool { return b["side"] == next })
}
