package gitsource

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// benchRepo is a work repository with n branches besides main, published
// on a smart-HTTP server.
func benchRepo(b *testing.B, n int) (*workRepo, string) {
	b.Helper()
	work := newWorkRepo(b)
	head := work.git("rev-parse", "HEAD")
	var stdin strings.Builder
	for i := range n {
		fmt.Fprintf(&stdin, "create refs/heads/feature/branch-%03d %s\n", i, head)
	}
	cmd := exec.Command("git", "update-ref", "--stdin")
	cmd.Dir, cmd.Env, cmd.Stdin = work.dir, gitEnv(), strings.NewReader(stdin.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("update-ref: %v\n%s", err, out)
	}
	srv := newGitServer(b, "", "")
	return work, srv.addBare(b, "bench", work)
}

// BenchmarkListBranches measures one poll's listing of 101 branches through
// gitsource, next to the git CLI doing the same (for-each-ref on the local
// path, ls-remote over HTTP) as a baseline measured in the same run.
func BenchmarkListBranches(b *testing.B) {
	const branches = 100
	work, url := benchRepo(b, branches)
	ctx := context.Background()
	list := func(b *testing.B, src *Source) {
		for b.Loop() {
			got, _, err := src.ListBranches(ctx)
			if err != nil || len(got) != branches+1 {
				b.Fatalf("listing: %d branches, %v", len(got), err)
			}
		}
	}
	cli := func(b *testing.B, dir string, args ...string) {
		for b.Loop() {
			cmd := exec.Command("git", args...)
			cmd.Dir, cmd.Env = dir, gitEnv()
			out, err := cmd.Output()
			if err != nil || strings.Count(string(out), "\n") < branches+1 {
				b.Fatalf("git %v: %v", args, err)
			}
		}
	}
	b.Run("local", func(b *testing.B) {
		src, err := Open(Options{App: "bench", Repo: work.dir})
		if err != nil {
			b.Fatal(err)
		}
		list(b, src)
	})
	b.Run("local-git-cli-baseline", func(b *testing.B) {
		cli(b, work.dir, "for-each-ref", "refs/heads/")
	})
	b.Run("http", func(b *testing.B) {
		src, err := Open(Options{App: "bench", Repo: url, CacheDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		list(b, src)
	})
	b.Run("http-git-cli-baseline", func(b *testing.B) {
		cli(b, work.dir, "ls-remote", "--heads", url)
	})
}
