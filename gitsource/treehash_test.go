package gitsource

import "testing"

func TestTreeHash(t *testing.T) {
	work := newWorkRepo(t)
	src := openLocal(t, work)
	ctx := testCtx(t)
	first := work.git("rev-parse", "HEAD")
	for _, dir := range []string{".", "dir", "dir/sub"} {
		spec := first + ":" // git's name of the root tree
		if dir != "." {
			spec += dir
		}
		got, err := src.TreeHash(ctx, first, dir)
		if want := work.git("rev-parse", spec); err != nil || got != want {
			t.Fatalf("TreeHash(%s) = %q, %v; want git's %s", dir, got, err, want)
		}
	}
	// A commit outside dir/ keeps its hash; one inside changes it.
	second := work.commitFile("bin/other.txt", "x\n")
	third := work.commitFile("dir/sub/file.txt", "version 2\n")
	h1, _ := src.TreeHash(ctx, first, "dir")
	h2, _ := src.TreeHash(ctx, second, "dir")
	h3, _ := src.TreeHash(ctx, third, "dir")
	if h1 != h2 || h2 == h3 {
		t.Fatalf("dir's hash at three commits: %s %s %s; want same, then different", h1, h2, h3)
	}
	for _, bad := range []string{"nope", "link", "dir/sub/file.txt"} {
		if _, err := src.TreeHash(ctx, first, bad); err == nil {
			t.Errorf("TreeHash(%s): no error", bad)
		}
	}
}
