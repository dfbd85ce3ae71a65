package gitsource

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
)

// TestPacksMerged pushes and fetches many times with a low pack limit and
// checks that the cache's packs are merged while every fetched commit stays
// readable, for full and shallow caches.
func TestPacksMerged(t *testing.T) {
	for _, depth := range []int{0, 1} {
		t.Run(fmt.Sprintf("depth=%d", depth), func(t *testing.T) {
			f := newRemoteFixture(t, Options{Depth: depth})
			f.src.maxPacks = 3
			ctx := testCtx(t)
			commits := map[string]string{} // commit → content of dir/sub/file.txt
			for i := range 10 {
				content := fmt.Sprintf("version %d\n", i+2)
				branch := fmt.Sprintf("b%d", i%3)
				f.work.git("checkout", "-q", "-B", branch)
				commits[f.work.commitFile("dir/sub/file.txt", content)] = content
				f.work.git("push", "-q", "origin", branch)
				branches, _, err := f.src.ListBranches(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.src.Fetch(ctx, branches); err != nil {
					t.Fatal(err)
				}
			}
			packs, err := filepath.Glob(filepath.Join(f.src.cacheDir, "objects", "pack", "*.pack"))
			if err != nil {
				t.Fatal(err)
			}
			if len(packs) > f.src.maxPacks {
				t.Errorf("cache holds %d packs after 10 fetches; want at most %d", len(packs), f.src.maxPacks)
			}
			for commit, want := range commits {
				tree, err := f.src.Tree(ctx, commit)
				if err != nil {
					t.Fatalf("commit %s after merging: %v", commit, err)
				}
				if b, err := fs.ReadFile(tree, "dir/sub/file.txt"); err != nil || string(b) != want {
					t.Fatalf("commit %s: file = %q, %v; want %q", commit, b, err, want)
				}
			}
			// A fresh Source over the same cache (a restart) reads it too.
			again, err := Open(Options{App: "shop", Repo: f.url, CacheDir: filepath.Dir(f.src.cacheDir)})
			if err != nil {
				t.Fatal(err)
			}
			for commit := range commits {
				if _, err := again.Tree(ctx, commit); err != nil {
					t.Fatalf("after restart, commit %s: %v", commit, err)
				}
			}
		})
	}
}
