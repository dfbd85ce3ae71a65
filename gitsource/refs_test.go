package gitsource

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// TestLocalRefsMatchGoGit compares the direct ref reader with go-git's on a
// repository holding every kind of ref file git writes.
func TestLocalRefsMatchGoGit(t *testing.T) {
	work := newWorkRepo(t)
	work.git("branch", "packed-only")
	work.git("branch", "feature/deep/x")
	work.git("tag", "-a", "-m", "annotated", "v1") // packed with a ^peeled line
	work.git("pack-refs", "--all")
	work.commitFile("dir/sub/file.txt", "version 2\n") // loose main overrides the packed one
	work.git("branch", "loose/new")
	work.git("symbolic-ref", "refs/heads/alias", "refs/heads/main")
	writeFile(t, filepath.Join(work.dir, ".git/refs/heads/ignored.lock"), "garbage\n", 0o644)

	check := func(what string) {
		t.Helper()
		refs, err := readLocalRefs(filepath.Join(work.dir, ".git"), filepath.Join(work.dir, ".git"))
		if err != nil {
			t.Fatal(err)
		}
		got, gotHead := branchesOf(refs)
		want, wantHead := goGitBranches(t, work.dir)
		if !maps.Equal(got, want) || gotHead != wantHead {
			t.Fatalf("%s: direct reader %v %q; go-git %v %q", what, got, gotHead, want, wantHead)
		}
		if _, ok := got["packed-only"]; !ok || len(got) != 4 {
			t.Fatalf("%s: want main, packed-only, feature/deep/x and loose/new: %v", what, got)
		}
	}
	check("attached HEAD")
	work.git("checkout", "-q", "--detach", "packed-only")
	check("detached HEAD")

	packed := filepath.Join(work.dir, ".git/packed-refs")
	writeFile(t, packed, "not a packed-refs line\n", 0o644)
	if _, err := readLocalRefs(filepath.Join(work.dir, ".git"), filepath.Join(work.dir, ".git")); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("corrupt packed-refs: err = %v", err)
	}
	if err := os.Remove(packed); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(work.dir, ".git/refs/heads")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(work.dir, ".git/refs/heads"), "", 0o644) // as reftable repositories have it
	if _, err := readLocalRefs(filepath.Join(work.dir, ".git"), filepath.Join(work.dir, ".git")); err == nil || !strings.Contains(err.Error(), "reftable") {
		t.Fatalf("refs/heads as a file: err = %v", err)
	}
}

// goGitBranches lists branches and HEAD through go-git's storage.
func goGitBranches(t *testing.T, dir string) (map[string]string, string) {
	t.Helper()
	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	iter, err := repo.Storer.IterReferences()
	if err != nil {
		t.Fatal(err)
	}
	var refs []*plumbing.Reference
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference && r.Hash().IsZero() {
			return nil // go-git lists a stray .lock file as a ref with a zero hash
		}
		refs = append(refs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	head, err := repo.Storer.Reference(plumbing.HEAD)
	if err != nil {
		t.Fatal(err)
	}
	return branchesOf(append(refs, head))
}
