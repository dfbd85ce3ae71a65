package gitsource

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/arbordev/arbor/internal/repofs"
)

// remoteFixture is a work repository published to a smart-HTTP server and
// a Source reading it through a bare cache.
type remoteFixture struct {
	work *workRepo
	srv  *gitServer
	src  *Source
	url  string
}

func newRemoteFixture(t *testing.T, opts Options) *remoteFixture {
	t.Helper()
	f := &remoteFixture{work: newWorkRepo(t), srv: newGitServer(t, "", "")}
	f.work.git("branch", "feature/x")
	f.url = f.srv.addBare(t, "shop", f.work)
	opts.App, opts.Repo, opts.CacheDir = "shop", f.url, t.TempDir()
	src, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.src = src
	return f
}

func TestListBranchesHTTP(t *testing.T) {
	f := newRemoteFixture(t, Options{})
	ctx := testCtx(t)
	f.srv.take()
	branches, head, err := f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	main := f.work.git("rev-parse", "main")
	want := map[string]string{"main": main, "feature/x": main}
	if !maps.Equal(branches, want) || head != "main" {
		t.Fatalf("ListBranches = %v, %q; want %v, \"main\"", branches, head, want)
	}
	reqs, _ := f.srv.take()
	if len(reqs) != 1 || !strings.Contains(reqs[0], "info/refs?service=git-upload-pack") {
		t.Fatalf("a listing sent %q; want one ref advertisement", reqs)
	}
}

func TestFetchOnlyWhatMoved(t *testing.T) {
	f := newRemoteFixture(t, Options{})
	ctx := testCtx(t)
	f.work.git("branch", "other")
	f.work.git("push", "-q", "origin", "other")

	// First poll: everything is new, one fetch.
	branches, _, err := f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.src.Fetch(ctx, branches); err != nil {
		t.Fatal(err)
	}
	f.srv.take()

	// Second poll, nothing moved: only the ref advertisement.
	branches, _, err = f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.src.Fetch(ctx, branches); err != nil {
		t.Fatal(err)
	}
	reqs, _ := f.srv.take()
	if len(reqs) != 1 || !strings.Contains(reqs[0], "info/refs") {
		t.Fatalf("a poll with nothing moved sent %q; want only the ref advertisement", reqs)
	}

	// Move main and other; fetch only main: one upload-pack with one want.
	newMain := f.work.commitFile("dir/sub/file.txt", "version 2\n")
	f.work.git("push", "-q", "origin", "main")
	f.work.git("checkout", "-q", "other")
	newOther := f.work.commitFile("other.txt", "other\n")
	f.work.git("push", "-q", "origin", "other")
	f.work.git("checkout", "-q", "main")
	branches, _, err = f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if branches["main"] != newMain || branches["other"] != newOther {
		t.Fatalf("listing after push = %v", branches)
	}
	oldOther := f.cachedRef(t, "other")
	f.srv.take()
	if err := f.src.Fetch(ctx, map[string]string{"main": newMain}); err != nil {
		t.Fatal(err)
	}
	_, uploads := f.srv.take()
	if len(uploads) != 1 || wantLines(uploads[0]) != 1 {
		t.Fatalf("fetch of one moved branch sent %d upload-pack requests (want lines: %v); want 1 with 1 want", len(uploads), wantCounts(uploads))
	}
	if got := f.cachedRef(t, "main"); got != newMain {
		t.Fatalf("cached main = %s, want %s", got, newMain)
	}
	if got := f.cachedRef(t, "other"); got != oldOther {
		t.Fatalf("cached other moved to %s though it was not asked for (was %s)", got, oldOther)
	}
	tree, err := f.src.Tree(ctx, newMain)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(tree, "dir/sub/file.txt"); err != nil || string(b) != "version 2\n" {
		t.Fatalf("file at new main = %q, %v", b, err)
	}
}

func wantCounts(uploads [][]byte) []int {
	var n []int
	for _, u := range uploads {
		n = append(n, wantLines(u))
	}
	return n
}

func (f *remoteFixture) cachedRef(t *testing.T, branch string) string {
	t.Helper()
	f.src.mu.Lock()
	defer f.src.mu.Unlock()
	r, err := f.src.repo.Reference(plumbing.NewBranchReferenceName(branch), false)
	if err != nil {
		return ""
	}
	return r.Hash().String()
}

func TestFetchSharedCommitNeedsNoRequest(t *testing.T) {
	f := newRemoteFixture(t, Options{})
	ctx := testCtx(t)
	branches, _, err := f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.src.Fetch(ctx, map[string]string{"main": branches["main"]}); err != nil {
		t.Fatal(err)
	}
	f.srv.take()
	// feature/x points at the same commit, already in the cache.
	if err := f.src.Fetch(ctx, branches); err != nil {
		t.Fatal(err)
	}
	if reqs, _ := f.srv.take(); len(reqs) != 0 {
		t.Fatalf("fetch of a branch at a cached commit sent %q; want nothing", reqs)
	}
	if got := f.cachedRef(t, "feature/x"); got != branches["feature/x"] {
		t.Fatalf("cached feature/x = %q, want %s", got, branches["feature/x"])
	}
}

func TestShallowFetch(t *testing.T) {
	f := newRemoteFixture(t, Options{Depth: 1})
	ctx := testCtx(t)
	first := f.work.git("rev-parse", "main")
	second := f.work.commitFile("dir/sub/file.txt", "version 2\n")
	f.work.git("push", "-q", "origin", "main")
	branches, _, err := f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Only main: feature/x still points at the first commit.
	if err := f.src.Fetch(ctx, map[string]string{"main": branches["main"]}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.src.Tree(ctx, second); err != nil {
		t.Fatal(err)
	}
	if _, err := f.src.CommitTime(ctx, first); !errors.Is(err, ErrCommitNotFound) {
		t.Fatalf("parent of a depth-1 fetch: err = %v, want ErrCommitNotFound", err)
	}
	third := f.work.commitFile("dir/sub/file.txt", "version 3\n")
	f.work.git("push", "-q", "origin", "main")
	if err := f.src.Fetch(ctx, map[string]string{"main": third}); err != nil {
		t.Fatal(err)
	}
	tree, err := f.src.Tree(ctx, third)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := fs.ReadFile(tree, "dir/sub/file.txt"); string(b) != "version 3\n" {
		t.Fatalf("file at third commit = %q", b)
	}
}

func TestTreeFS(t *testing.T) {
	f := newRemoteFixture(t, Options{})
	ctx := testCtx(t)
	first := f.work.git("rev-parse", "main")
	second := f.work.commitFile("dir/sub/file.txt", "version 2\n")
	f.work.git("push", "-q", "origin", "main")
	branches, _, err := f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.src.Fetch(ctx, branches); err != nil {
		t.Fatal(err)
	}
	tree, err := f.src.Tree(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(tree, ".release.yaml", "dir/sub/file.txt", "bin/run.sh", "link", "bin/dirlink"); err != nil {
		t.Fatal(err)
	}
	old, err := f.src.Tree(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		fsys       fs.FS
		name, want string
	}{
		{old, "dir/sub/file.txt", "version 1\n"},
		{tree, "dir/sub/file.txt", "version 2\n"},
		{tree, "link", "version 2\n"},                     // symlink followed
		{tree, "bin/dirlink/sub/file.txt", "version 2\n"}, // through a directory link
	} {
		b, err := fs.ReadFile(c.fsys, c.name)
		if err != nil || string(b) != c.want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", c.name, b, err, c.want)
		}
	}
	info, err := fs.Stat(tree, "bin/run.sh")
	if err != nil || info.Mode() != 0o555 {
		t.Errorf("Stat(bin/run.sh) = %v, %v; want executable mode 0555", info, err)
	}
	when, err := f.src.CommitTime(ctx, second)
	if err != nil || !info.ModTime().Equal(when) {
		t.Errorf("ModTime = %v, CommitTime = %v, %v", info.ModTime(), when, err)
	}
	if target, err := tree.(fs.ReadLinkFS).ReadLink("link"); err != nil || target != "dir/sub/file.txt" {
		t.Errorf("ReadLink(link) = %q, %v", target, err)
	}
	for _, bad := range []string{"missing", "dir/missing", "dir/sub/file.txt/x", "../etc/passwd", "/abs", "dir//sub"} {
		if _, err := fs.ReadFile(tree, bad); err == nil {
			t.Errorf("ReadFile(%q) succeeded", bad)
		}
	}
	if _, err := f.src.Tree(ctx, strings.Repeat("a", 40)); !errors.Is(err, ErrCommitNotFound) {
		t.Errorf("Tree(unknown commit) err = %v, want ErrCommitNotFound", err)
	}
	if _, err := f.src.Tree(ctx, "main"); err == nil {
		t.Error("Tree(\"main\") accepted a branch name as a commit")
	}
}

func TestTreeFSEscapingLinks(t *testing.T) {
	work := newWorkRepo(t)
	for name, target := range map[string]string{"out": "../../etc/passwd", "abs": "/etc/passwd", "loop": "loop"} {
		if err := os.Symlink(target, filepath.Join(work.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	head := work.commitAll("links")
	src, err := Open(Options{App: "local", Repo: work.dir})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := src.Tree(testCtx(t), head)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"out", "abs", "loop"} {
		if _, err := fs.ReadFile(tree, name); err == nil {
			t.Errorf("ReadFile(%s) followed a link out of the tree or in a loop", name)
		} else if name != "loop" && !errors.Is(err, repofs.ErrEscapes) {
			t.Errorf("ReadFile(%s) = %v, want repofs.ErrEscapes", name, err)
		}
		if _, err := fs.Lstat(tree, name); err != nil {
			t.Errorf("Lstat(%s): %v", name, err)
		}
	}
}

// TestTreeFSRefusesLikeLocalView reads the same hostile repository through
// the daemon's view (a commit's tree) and the CLI's (the work tree on disk):
// a link out of the repository and a file over the size limit give the same
// error in both, and no content.
func TestTreeFSRefusesLikeLocalView(t *testing.T) {
	work := newWorkRepo(t)
	secret := filepath.Join(filepath.Dir(work.dir), "secret.txt")
	writeFile(t, secret, "TOP-SECRET\n", 0o644)
	for name, target := range map[string]string{
		"out":        "../secret.txt",
		"abs":        secret,
		"dir/sub/up": "../../../secret.txt",
		"outdir":     "..",
	} {
		if err := os.Symlink(target, filepath.Join(work.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(work.dir, "big.yaml"), strings.Repeat("#\n", repofs.DefaultMaxFileSize/2+1), 0o644)
	head := work.commitAll("hostile")
	src, err := Open(Options{App: "local", Repo: work.dir})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := src.Tree(testCtx(t), head)
	if err != nil {
		t.Fatal(err)
	}
	local, err := repofs.OpenDir(work.dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	for name, want := range map[string]error{
		"out": repofs.ErrEscapes, "abs": repofs.ErrEscapes, "dir/sub/up": repofs.ErrEscapes,
		"outdir/secret.txt": repofs.ErrEscapes, "big.yaml": repofs.ErrTooLarge,
	} {
		views := map[string]fs.FS{"tree": tree, "local": local}
		reasons := map[string]string{}
		for view, fsys := range views {
			b, err := fs.ReadFile(fsys, name)
			var pe *fs.PathError
			if !errors.Is(err, want) || !errors.As(err, &pe) {
				t.Errorf("%s view: ReadFile(%s) = %d bytes, %v; want %v", view, name, len(b), err, want)
				continue
			}
			reasons[view] = pe.Err.Error()
		}
		if len(reasons) == 2 && reasons["tree"] != reasons["local"] {
			t.Errorf("%s: the views disagree:\ntree:  %s\nlocal: %s", name, reasons["tree"], reasons["local"])
		}
	}
}

func TestBranchDeletionVisible(t *testing.T) {
	f := newRemoteFixture(t, Options{})
	ctx := testCtx(t)
	f.work.git("push", "-q", "origin", "--delete", "feature/x")
	branches, _, err := f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := branches["feature/x"]; ok || len(branches) != 1 {
		t.Fatalf("after deleting feature/x the listing is %v", branches)
	}
}

func TestEmptyAndFailedListings(t *testing.T) {
	srv := newGitServer(t, "", "")
	runGit(t, srv.root, "init", "-q", "--bare", "empty.git")
	ctx := testCtx(t)
	src, err := Open(Options{App: "empty", Repo: srv.srv.URL + "/empty.git", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	branches, _, err := src.ListBranches(ctx)
	if !errors.Is(err, ErrNoBranches) || len(branches) != 0 {
		t.Fatalf("empty repository: %v, %v; want no branches and ErrNoBranches", branches, err)
	}

	down, err := Open(Options{App: "down", Repo: srv.srv.URL + "/missing.git", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := down.ListBranches(ctx); err == nil || errors.Is(err, ErrNoBranches) {
		t.Fatalf("missing repository: err = %v; want a listing error", err)
	}
	srv.srv.Close()
	if _, _, err := src.ListBranches(ctx); err == nil || errors.Is(err, ErrNoBranches) {
		t.Fatalf("server down: err = %v; want a listing error", err)
	}
}

func TestHTTPAuth(t *testing.T) {
	const user, pass = "arbor", "s3cret-Passw0rd"
	work := newWorkRepo(t)
	srv := newGitServer(t, user, pass)
	url := srv.addBare(t, "private", work)
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content+"\n", 0o600)
		return p
	}
	ctx := testCtx(t)
	open := func(a Auth) *Source {
		t.Helper()
		src, err := Open(Options{App: "private", Repo: url, CacheDir: t.TempDir(), Auth: a})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}

	good := open(Auth{UsernameFile: file("user", user), PasswordFile: file("pass", pass)})
	branches, _, err := good.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Fetch(ctx, branches); err != nil {
		t.Fatal(err)
	}

	srv.pass = "a-token-value-123"
	token := open(Auth{UsernameFile: file("user2", user), TokenFile: file("token", srv.pass)})
	if _, _, err := token.ListBranches(ctx); err != nil {
		t.Fatalf("token auth: %v", err)
	}

	wrong := open(Auth{UsernameFile: file("user3", user), PasswordFile: file("wrong", "wrong-password-xyz")})
	_, _, err = wrong.ListBranches(ctx)
	if !errors.Is(err, transport.ErrAuthenticationRequired) && !errors.Is(err, transport.ErrAuthorizationFailed) {
		t.Fatalf("wrong password: err = %v; want an authentication error", err)
	}
	if strings.Contains(err.Error(), "wrong-password-xyz") {
		t.Fatalf("error leaks the password: %v", err)
	}
	t.Logf("wrong password error: %v", err)

	none := open(Auth{})
	if _, _, err := none.ListBranches(ctx); !errors.Is(err, transport.ErrAuthenticationRequired) {
		t.Fatalf("no credentials: err = %v; want ErrAuthenticationRequired", err)
	}

	inURL, err := Open(Options{App: "inurl", Repo: strings.Replace(url, "http://", "http://arbor:url-pass-987@", 1), CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = inURL.ListBranches(ctx)
	if err == nil || strings.Contains(err.Error(), "url-pass-987") {
		t.Fatalf("password in URL: err = %v; want an error without the password", err)
	}
}

func TestMetrics(t *testing.T) {
	m := NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	f := newRemoteFixture(t, Options{Metrics: m})
	ctx := testCtx(t)
	branches, _, err := f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.src.Fetch(ctx, branches); err != nil {
		t.Fatal(err)
	}
	if err := f.src.Fetch(ctx, branches); err != nil { // nothing moved: no fetch observed
		t.Fatal(err)
	}
	f.srv.srv.Close()
	if _, _, err := f.src.ListBranches(ctx); err == nil {
		t.Fatal("listing from a stopped server succeeded")
	}
	if got := sampleCount(t, reg, "arbor_git_operation_duration_seconds", "list"); got != 2 {
		t.Errorf("list duration samples = %d, want 2", got)
	}
	if got := sampleCount(t, reg, "arbor_git_operation_duration_seconds", "fetch"); got != 1 {
		t.Errorf("fetch duration samples = %d, want 1 (the second fetch had nothing to do)", got)
	}
	if got := sampleCount(t, reg, "arbor_git_errors_total", "list"); got != 1 {
		t.Errorf("list errors = %d, want 1", got)
	}
	if got := sampleCount(t, reg, "arbor_git_errors_total", "fetch"); got != 0 {
		t.Errorf("fetch errors = %d, want 0", got)
	}
}

// sampleCount returns a histogram's sample count or a counter's value for
// app "shop" and the given op, from what reg exposes.
func sampleCount(t *testing.T, reg prometheus.Gatherer, name, op string) int {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["app"] != "shop" || labels["op"] != op {
				continue
			}
			if h := m.GetHistogram(); h != nil {
				return int(h.GetSampleCount())
			}
			return int(m.GetCounter().GetValue())
		}
	}
	return 0
}

func TestFileURLAndForcePush(t *testing.T) {
	work := newWorkRepo(t)
	bare := filepath.Join(t.TempDir(), "shop.git")
	runGit(t, "", "clone", "-q", "--bare", work.dir, bare)
	work.git("remote", "add", "origin", bare)
	src, err := Open(Options{App: "shop", Repo: "file://" + bare, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if src.Local() {
		t.Fatal("a file:// URL must go through the cache, not be read in place")
	}
	ctx := testCtx(t)
	fetchAll := func() map[string]string {
		t.Helper()
		branches, _, err := src.ListBranches(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Fetch(ctx, branches); err != nil {
			t.Fatal(err)
		}
		return branches
	}
	fetchAll()
	// Rewrite main with an unrelated history and force-push it.
	work.git("checkout", "-q", "--orphan", "rewritten")
	rewritten := work.commitFile("dir/sub/file.txt", "rewritten\n")
	work.git("push", "-q", "--force", "origin", "rewritten:main")
	if got := fetchAll()["main"]; got != rewritten {
		t.Fatalf("main after force-push = %s, want %s", got, rewritten)
	}
	tree, err := src.Tree(ctx, rewritten)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := fs.ReadFile(tree, "dir/sub/file.txt"); string(b) != "rewritten\n" {
		t.Fatalf("file after force-push = %q", b)
	}
}
