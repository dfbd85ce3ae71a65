package images_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arbordev/arbor/gitsource"
	"github.com/arbordev/arbor/images"
	"github.com/arbordev/arbor/internal/buildkittest"
	"github.com/arbordev/arbor/internal/gittest"
)

var services = []string{"web", "api", "worker", "admin", "docs"}

// history makes a repository with five services, each its own context with a
// Dockerfile, then commits commits more, each touching one service in turn.
// It returns the repository's directory and its commits, oldest first.
func history(tb testing.TB, commits int) (string, []string) {
	tb.Helper()
	dir := tb.TempDir()
	gittest.Run(tb, dir, "init", "-q", "-b", "main")
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	commit := func(msg string) string {
		gittest.Run(tb, dir, "add", "-A")
		gittest.Run(tb, dir, "commit", "-q", "-m", msg)
		return gittest.Run(tb, dir, "rev-parse", "HEAD")
	}
	for _, s := range services {
		write(s+"/Dockerfile", "FROM scratch\nCOPY version.txt /version.txt\n")
		write(s+"/version.txt", "0\n")
	}
	write("README.md", "five services\n")
	out := []string{commit("initial")}
	for i := 1; i <= commits; i++ {
		s := services[(i-1)%len(services)]
		write(s+"/version.txt", fmt.Sprintf("%d\n", i))
		out = append(out, commit(fmt.Sprintf("change %s", s)))
	}
	return dir, out
}

// buildCommit asks for every service's image at commit, as the daemon will:
// the tree from gitsource, the context key its tree hash.
func buildCommit(tb testing.TB, b *images.Builder, src *gitsource.Source, commit string) []images.Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tree, err := src.Tree(ctx, commit)
	if err != nil {
		tb.Fatal(err)
	}
	results := make([]images.Result, len(services))
	for i, s := range services {
		key, err := src.TreeHash(ctx, commit, s)
		if err != nil {
			tb.Fatal(err)
		}
		results[i], err = b.Build(ctx, images.Request{Repository: s, Source: tree, Context: s, ContextKey: key})
		if err != nil {
			tb.Fatalf("%s at %s: %v", s, commit[:8], err)
		}
	}
	return results
}

func historyBuilder(tb testing.TB) *images.Builder {
	reg := buildkittest.Registry(tb)
	b, err := images.NewBuilder(images.BuilderOptions{
		Addr:      buildkittest.Addr(tb),
		Registry:  reg + "/" + buildkittest.Repository(tb),
		PlainHTTP: true,
		WorkDir:   tb.TempDir(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

// TestBuildsFollowHistory walks a 20-commit history where each commit
// touches one of five services: the first commit builds all five, every
// later one exactly the service it touched, and a second branch off the
// same commit builds nothing.
func TestBuildsFollowHistory(t *testing.T) {
	dir, commits := history(t, 20)
	src, err := gitsource.Open(gitsource.Options{App: "shop", Repo: dir})
	if err != nil {
		t.Fatal(err)
	}
	b := historyBuilder(t)
	prev := buildCommit(t, b, src, commits[0])
	if b.Solves() != int64(len(services)) {
		t.Fatalf("first commit: %d builds, want %d", b.Solves(), len(services))
	}
	for i, c := range commits[1:] {
		before := b.Solves()
		res := buildCommit(t, b, src, c)
		touched := i % len(services)
		for j := range services {
			if changed := res[j].Ref != prev[j].Ref; changed != (j == touched) || res[j].Built != (j == touched) {
				t.Fatalf("commit %d (touches %s): %s changed=%v built=%v", i+1, services[touched], services[j], changed, res[j].Built)
			}
		}
		if n := b.Solves() - before; n != 1 {
			t.Fatalf("commit %d: %d builds, want 1", i+1, n)
		}
		prev = res
	}
	// Another branch at the last commit: every image is there already.
	before := b.Solves()
	buildCommit(t, b, src, commits[len(commits)-1])
	if b.Solves() != before {
		t.Fatalf("a second branch off the same commit built %d images, want 0", b.Solves()-before)
	}
}

// BenchmarkBuildsPerPush reports the builds per pushed commit over a
// 20-commit history where each commit touches one of five services (aim: 1).
func BenchmarkBuildsPerPush(b *testing.B) {
	dir, commits := history(b, 20)
	src, err := gitsource.Open(gitsource.Options{App: "shop", Repo: dir})
	if err != nil {
		b.Fatal(err)
	}
	var pushes, builds int64
	for b.Loop() {
		bld := historyBuilder(b) // a fresh repository prefix: every run builds from nothing
		buildCommit(b, bld, src, commits[0])
		first := bld.Solves()
		for _, c := range commits[1:] {
			buildCommit(b, bld, src, c)
		}
		pushes += int64(len(commits) - 1)
		builds += bld.Solves() - first
	}
	b.ReportMetric(float64(builds)/float64(pushes), "builds/push")
}

// TestGitTreeLinkOutOfContextIsRefused reads a context from a real git tree:
// gitsource shows a symbolic link as a link, and one that leaves the context
// directory (even to another directory of the repository, which the context's
// tree hash would not cover) is refused before anything is built.
func TestGitTreeLinkOutOfContextIsRefused(t *testing.T) {
	dir := t.TempDir()
	gittest.Run(t, dir, "init", "-q", "-b", "main")
	for p, s := range map[string]string{"svc/Dockerfile": "FROM scratch\nCOPY . /\n", "lib/shared.txt": "shared\n"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644)
	}
	if err := os.Symlink("../lib/shared.txt", filepath.Join(dir, "svc/shared.txt")); err != nil {
		t.Fatal(err)
	}
	gittest.Run(t, dir, "add", "-A")
	gittest.Run(t, dir, "commit", "-q", "-m", "link out")
	commit := gittest.Run(t, dir, "rev-parse", "HEAD")
	src, err := gitsource.Open(gitsource.Options{App: "shop", Repo: dir})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := src.Tree(t.Context(), commit)
	if err != nil {
		t.Fatal(err)
	}
	key, err := src.TreeHash(t.Context(), commit, "svc")
	if err != nil {
		t.Fatal(err)
	}
	// The context is read once the registry has said it lacks the image: a
	// key's image exists only if its context passed.
	b := historyBuilder(t)
	_, err = b.Build(t.Context(), images.Request{Repository: "svc", Source: tree, Context: "svc", ContextKey: key})
	if err == nil || !strings.Contains(err.Error(), "shared.txt: symbolic link to ../lib/shared.txt leaves the build context") || b.Solves() != 0 {
		t.Fatalf("error %v (%d builds), want the link refused before building", err, b.Solves())
	}
}
