package gitsource

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/gittest"
)

// gitEnv isolates the git CLI from the machine's configuration.
func gitEnv() []string { return gittest.Env() }

// runGit runs the git CLI in dir and returns its trimmed output.
func runGit(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	return gittest.Run(tb, dir, args...)
}

func writeFile(tb testing.TB, path, content string, mode os.FileMode) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		tb.Fatal(err)
	}
}

// workRepo is a non-bare repository with branch main holding one commit.
type workRepo struct {
	tb  testing.TB
	dir string
}

func newWorkRepo(tb testing.TB) *workRepo {
	tb.Helper()
	dir := tb.TempDir()
	runGit(tb, dir, "init", "-q", "-b", "main")
	r := &workRepo{tb: tb, dir: dir}
	writeFile(tb, filepath.Join(dir, ".release.yaml"), "application_template: .release/application_template.yaml\n", 0o644)
	writeFile(tb, filepath.Join(dir, "dir/sub/file.txt"), "version 1\n", 0o644)
	writeFile(tb, filepath.Join(dir, "bin/run.sh"), "#!/bin/sh\necho hi\n", 0o755)
	if err := os.Symlink("dir/sub/file.txt", filepath.Join(dir, "link")); err != nil {
		tb.Fatal(err)
	}
	if err := os.Symlink("../dir", filepath.Join(dir, "bin/dirlink")); err != nil {
		tb.Fatal(err)
	}
	r.commitAll("initial")
	return r
}

func (r *workRepo) git(args ...string) string { r.tb.Helper(); return runGit(r.tb, r.dir, args...) }

// commitAll commits everything and returns the new HEAD.
func (r *workRepo) commitAll(msg string) string {
	r.tb.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

// commitFile writes one file on the current branch and commits it.
func (r *workRepo) commitFile(name, content string) string {
	r.tb.Helper()
	writeFile(r.tb, filepath.Join(r.dir, name), content, 0o644)
	return r.commitAll("change " + name)
}

// gitServer is git http-backend behind net/http/cgi, serving bare
// repositories under root, counting requests and keeping upload-pack
// request bodies.
type gitServer struct {
	root string
	srv  *httptest.Server

	user, pass string // basic auth required when user != ""
	// stall, when set and true for a request, makes the server hold that
	// request without a byte of answer until the client goes away.
	stall func(*http.Request) bool

	mu       sync.Mutex
	requests []string // "GET /repo.git/info/refs?service=git-upload-pack", ...
	uploads  [][]byte // bodies of POST .../git-upload-pack
}

func newGitServer(tb testing.TB, user, pass string) *gitServer {
	tb.Helper()
	execPath := runGit(tb, "", "--exec-path")
	s := &gitServer{root: tb.TempDir(), user: user, pass: pass}
	backend := &cgi.Handler{
		Path:   filepath.Join(execPath, "git-http-backend"),
		Stderr: io.Discard, // "Not a git repository" for the missing-repository test
		Env:    []string{"GIT_PROJECT_ROOT=" + s.root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != s.user || p != s.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		s.record(r)
		if s.stall != nil && s.stall(r) {
			<-r.Context().Done()
			return
		}
		backend.ServeHTTP(w, r)
	}))
	tb.Cleanup(s.srv.Close)
	return s
}

func (s *gitServer) record(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.uploads = append(s.uploads, body)
	}
}

// take returns and forgets the requests and upload bodies seen so far.
func (s *gitServer) take() ([]string, [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, up := s.requests, s.uploads
	s.requests, s.uploads = nil, nil
	return req, up
}

// addBare makes a bare copy of work named name.git, served by s, and sets
// it as work's "origin" so that r.git("push", ...) publishes.
func (s *gitServer) addBare(tb testing.TB, name string, work *workRepo) string {
	tb.Helper()
	bare := filepath.Join(s.root, name+".git")
	runGit(tb, "", "clone", "-q", "--bare", work.dir, bare)
	work.git("remote", "add", "origin", bare)
	return s.srv.URL + "/" + name + ".git"
}

// wantLines counts "want" lines in an upload-pack request: one per ref
// being fetched (distinct tips).
func wantLines(body []byte) int {
	return bytes.Count(body, []byte("want "))
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
