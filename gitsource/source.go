package gitsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/arbordev/arbor/internal/redact"
)

// ErrNoBranches is returned (wrapped) by ListBranches when the listing
// succeeded but holds no branch at all. Callers must treat it like any other
// listing error and delete nothing: a repository that loses every branch at
// once is more likely broken or misconfigured than empty.
var ErrNoBranches = errors.New("repository lists no branches")

// ErrCommitNotFound is returned (wrapped) by Tree and CommitTime when the
// commit is not in the cache, typically because it was not fetched or the
// branch moved again during the fetch. Listing and fetching again fixes it.
var ErrCommitNotFound = errors.New("commit not found")

// Options configures one Source.
type Options struct {
	// App names the app in errors, logs and metric labels.
	App string
	// Repo is the repository: an https://, http://, ssh://, git:// or
	// file:// URL, an scp-like address (git@host:owner/repo.git), or a path
	// to a repository on this machine, which is read in place and watched.
	Repo string
	// CacheDir holds the bare caches of remote repositories, one directory
	// per app and repository. Required unless Repo is a local path. A cache
	// belongs to one Source: never open two Sources with the same App and
	// Repo over one CacheDir at once (two daemons need two cache dirs).
	CacheDir string
	// Auth names the credential files; the zero value means none.
	Auth Auth
	// Depth limits fetches to that many commits per branch; 0 fetches full
	// history. Rendering needs only the tip, so 1 is enough for arbor.
	Depth int
	// Metrics records operation durations and errors; nil records nothing.
	Metrics *Metrics
	// Timeout bounds each listing and each fetch of a remote, from the
	// first byte sent to the last received; DefaultTimeout when zero. A
	// listing that times out is an error like any other: nothing is deleted.
	Timeout time.Duration
	// MaxFetchSize bounds the pack data one fetch may receive, in bytes;
	// DefaultMaxFetchSize when zero. A fetch that passes it fails with
	// ErrTooLarge and leaves the cache as it was.
	MaxFetchSize int64
	// Logger receives warnings (watch errors, a cache recreated or not
	// compacted); nil discards them. Credentials never reach it.
	Logger *slog.Logger
}

// Source is one app's repository. Its methods are safe for concurrent use;
// reads of the object store are serialised per Source.
type Source struct {
	app     string
	loc     location
	auth    Auth
	depth   int
	metrics *Metrics
	log     *slog.Logger
	trigger *Trigger
	timeout time.Duration // bounds one listing or fetch of a remote
	maxPack int64         // bounds the pack data of one fetch

	mu       sync.Mutex // guards the object store (go-git's is not concurrency-safe)
	repo     *git.Repository
	remote   *git.Remote              // nil when local
	cacheDir string                   // remote only: the bare cache's directory
	maxPacks int                      // remote only: merge packs beyond this many (see compactPacks)
	cached   map[string]plumbing.Hash // remote only: the cache's branches; nil = read from disk
	packsMod time.Time                // local only: modification time of objects/pack when last indexed
	gitDir   string                   // local only: the directory holding HEAD
	common   string                   // local only: the directory holding refs and packed-refs
}

// Open prepares a Source without touching the network: for a remote it
// opens (or creates) the bare cache under opts.CacheDir, for a local path it
// opens the repository in place.
func Open(opts Options) (*Source, error) {
	if opts.App == "" {
		return nil, errors.New("gitsource: app name is empty")
	}
	loc, err := parseLocation(opts.Repo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.App, err)
	}
	if err := opts.Auth.check(loc); err != nil {
		return nil, fmt.Errorf("%s: %w", opts.App, err)
	}
	if opts.Depth < 0 {
		return nil, fmt.Errorf("%s: depth %d is negative", opts.App, opts.Depth)
	}
	if opts.Timeout < 0 || opts.MaxFetchSize < 0 {
		return nil, fmt.Errorf("%s: timeout %s and fetch size %d must not be negative", opts.App, opts.Timeout, opts.MaxFetchSize)
	}
	s := &Source{
		app: opts.App, loc: loc, auth: opts.Auth, depth: opts.Depth,
		metrics: opts.Metrics, log: opts.Logger, trigger: NewTrigger(),
		timeout: opts.Timeout, maxPack: opts.MaxFetchSize,
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.maxPack == 0 {
		s.maxPack = DefaultMaxFetchSize
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if loc.local {
		err = s.openLocal()
	} else {
		err = s.openCache(opts.CacheDir)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.App, err)
	}
	return s, nil
}

// App is the app name the Source was opened for.
func (s *Source) App() string { return s.app }

// Local reports whether the repository is read in place (a local path).
func (s *Source) Local() bool { return s.loc.local }

// String is the repository address without its userinfo (redact.URL).
func (s *Source) String() string { return s.loc.String() }

// Trigger is the Source's refresh trigger, fired by Watch and by webhooks.
// The caller's refresh loop receives from Trigger().C().
func (s *Source) Trigger() *Trigger { return s.trigger }

// Triggers is Trigger().C(): one receive per coalesced refresh request.
func (s *Source) Triggers() <-chan struct{} { return s.trigger.C() }

func (s *Source) openLocal() error {
	repo, err := git.PlainOpenWithOptions(s.loc.path, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return fmt.Errorf("open repository %s: %w", s.loc.path, err)
	}
	gitDir, common, err := gitDirs(s.loc.path)
	if err != nil {
		return err
	}
	s.repo, s.gitDir, s.common = repo, gitDir, common
	return nil
}

// gitDirs finds the directory holding HEAD and the one holding refs for a
// working tree (.git directory or "gitdir:" file) or a bare repository.
func gitDirs(root string) (gitDir, common string, err error) {
	gitDir = filepath.Join(root, ".git")
	fi, err := os.Stat(gitDir)
	switch {
	case err != nil:
		gitDir = root // bare
	case !fi.IsDir():
		b, err := os.ReadFile(gitDir)
		if err != nil {
			return "", "", err
		}
		ref, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir:")
		if !ok {
			return "", "", fmt.Errorf("%s: not a gitdir file", gitDir)
		}
		gitDir = strings.TrimSpace(ref)
		if !filepath.IsAbs(gitDir) {
			gitDir = filepath.Join(root, gitDir)
		}
	}
	common = gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		common = strings.TrimSpace(string(b))
		if !filepath.IsAbs(common) {
			common = filepath.Join(gitDir, common)
		}
	}
	return gitDir, filepath.Clean(common), nil
}

// openCache opens the bare cache for the remote, creating it on first use
// and recreating it when it cannot be opened (it holds nothing that a fetch
// cannot restore).
func (s *Source) openCache(cacheDir string) error {
	if cacheDir == "" {
		return errors.New("cache directory is not set")
	}
	dir := filepath.Join(cacheDir, cacheName(s.app, s.loc))
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(dir, true)
	} else if err != nil {
		s.log.Warn("recreating unreadable git cache", "app", s.app, "dir", dir, "err", err)
		if err = os.RemoveAll(dir); err == nil {
			repo, err = git.PlainInit(dir, true)
		}
	}
	if err != nil {
		return fmt.Errorf("git cache %s: %w", dir, err)
	}
	remote, err := ensureRemote(repo, s.loc.raw)
	if err != nil {
		return fmt.Errorf("git cache %s: %w", dir, err)
	}
	s.repo, s.remote, s.cacheDir, s.maxPacks = repo, remote, dir, defaultMaxPacks
	return nil
}

// ensureRemote makes the cache's "origin" point at url.
func ensureRemote(repo *git.Repository, url string) (*git.Remote, error) {
	r, err := repo.Remote(git.DefaultRemoteName)
	if err == nil && len(r.Config().URLs) == 1 && r.Config().URLs[0] == url {
		return r, nil
	}
	if err == nil {
		if err := repo.DeleteRemote(git.DefaultRemoteName); err != nil {
			return nil, err
		}
	}
	return repo.CreateRemote(&config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{url}})
}

// cacheName is the cache directory of an app's repository: readable, and
// unique per repository so that a changed address starts a fresh cache.
func cacheName(app string, loc location) string {
	sum := sha256.Sum256([]byte(loc.host + "/" + loc.repo))
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, app)
	return safe + "-" + hex.EncodeToString(sum[:6]) + ".git"
}

// ListBranches returns every branch and its commit (full hex SHA), and the
// default branch (the remote's HEAD; "" when it cannot be told). For a
// remote it costs one ref advertisement and fetches nothing; for a local
// path it reads the refs on disk. A listing with no branches returns the
// empty map and an error wrapping ErrNoBranches.
func (s *Source) ListBranches(ctx context.Context) (map[string]string, string, error) {
	start := time.Now()
	branches, head, err := s.listBranches(ctx)
	s.metrics.observe(s.app, OpList, start, err)
	return branches, head, err
}

func (s *Source) listBranches(ctx context.Context) (map[string]string, string, error) {
	refs, err := s.listRefs(ctx)
	if err != nil {
		return nil, "", err
	}
	branches, head := branchesOf(refs)
	if len(branches) == 0 {
		return branches, "", fmt.Errorf("%s: list %s: %w", s.app, s.loc, ErrNoBranches)
	}
	return branches, head, nil
}

func (s *Source) listRefs(ctx context.Context) ([]*plumbing.Reference, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: list %s: %w", s.app, s.loc, err)
	}
	if s.remote == nil {
		refs, err := s.localRefs()
		if err != nil {
			return nil, fmt.Errorf("%s: list %s: %w", s.app, s.loc, err)
		}
		return refs, nil
	}
	method, secrets, err := s.auth.method(s.loc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.app, err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	refs, err := s.remote.ListContext(ctx, &git.ListOptions{Auth: method, PeelingOption: git.IgnorePeeled})
	err = s.timedOut(ctx, err)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return nil, nil // a successful listing of nothing; ListBranches reports ErrNoBranches
	}
	if err != nil {
		return nil, fmt.Errorf("%s: list %s: %w", s.app, s.loc, explainAuth(redact.Error(redact.Values(err, secrets...), s.loc.raw), method))
	}
	return refs, nil
}

func (s *Source) localRefs() ([]*plumbing.Reference, error) {
	return readLocalRefs(s.gitDir, s.common)
}

// branchesOf picks the branches out of a ref listing and works out the
// default branch from HEAD: its symbolic target, or else the branch at the
// same commit (preferring main, then master, then the first by name).
func branchesOf(refs []*plumbing.Reference) (map[string]string, string) {
	branches := make(map[string]string)
	var head *plumbing.Reference
	for _, r := range refs {
		switch {
		case r.Name() == plumbing.HEAD:
			head = r
		case r.Name().IsBranch() && r.Type() == plumbing.HashReference:
			branches[branchName(r.Name())] = r.Hash().String()
		}
	}
	if head == nil {
		return branches, ""
	}
	if head.Type() == plumbing.SymbolicReference {
		if name := branchName(head.Target()); head.Target().IsBranch() && branches[name] != "" {
			return branches, name
		}
		return branches, ""
	}
	var same []string
	for name, sha := range branches {
		if sha == head.Hash().String() {
			same = append(same, name)
		}
	}
	sort.Strings(same)
	for _, pref := range []string{"main", "master"} {
		if i := sort.SearchStrings(same, pref); i < len(same) && same[i] == pref {
			return branches, pref
		}
	}
	if len(same) > 0 {
		return branches, same[0]
	}
	return branches, ""
}

// Fetch brings the given branches (name → commit, as from ListBranches) into
// the cache. Branches whose commit the cache already holds are only pointed
// at it; the rest are fetched with one refspec each, in one request. When
// nothing moved, nothing is sent. For a local path Fetch does nothing: the
// objects are already on disk.
func (s *Source) Fetch(ctx context.Context, branches map[string]string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: fetch: %w", s.app, err)
	}
	if s.remote == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	specs, err := s.refspecsToFetch(branches)
	if err != nil || len(specs) == 0 {
		return err
	}
	start := time.Now()
	err = s.fetch(ctx, specs)
	s.metrics.observe(s.app, OpFetch, start, err)
	if err != nil {
		s.cached = nil // some refs may have been written before the failure
		return err
	}
	s.refreshCached(specs)
	if err := s.compactPacks(s.maxPacks); err != nil {
		// The fetch itself succeeded; a cache that stays unmerged only reads slower.
		s.log.Warn("git cache: merging packs failed", "app", s.app, "err", err)
	}
	return nil
}

// refspecsToFetch returns a refspec for each branch whose commit is missing
// from the cache, and points the cache's ref at the commit for the others.
// Callers hold s.mu.
func (s *Source) refspecsToFetch(branches map[string]string) ([]config.RefSpec, error) {
	cached, err := s.cachedRefs()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(branches))
	for name := range branches {
		names = append(names, name)
	}
	sort.Strings(names)
	var specs []config.RefSpec
	for _, name := range names {
		h, err := parseHash(branches[name])
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %w", s.app, name, err)
		}
		if cached[name] == h {
			continue
		}
		ref := plumbing.NewBranchReferenceName(name)
		if s.repo.Storer.HasEncodedObject(h) == nil {
			if err := s.repo.Storer.SetReference(plumbing.NewHashReference(ref, h)); err != nil {
				return nil, fmt.Errorf("%s@%s: set cached ref: %w", s.app, name, err)
			}
			cached[name] = h
			continue
		}
		spec := config.RefSpec("+" + ref.String() + ":" + ref.String())
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("%s@%s: %w", s.app, name, err)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// refreshCached re-reads the cache refs a fetch wrote. Callers hold s.mu.
func (s *Source) refreshCached(specs []config.RefSpec) {
	for _, spec := range specs {
		ref := plumbing.ReferenceName(spec.Src())
		r, err := s.repo.Storer.Reference(ref)
		if err != nil {
			s.cached = nil
			return
		}
		s.cached[branchName(ref)] = r.Hash()
	}
}

// cachedRefs returns the cache's branches, read from disk once and then
// kept in memory (arbor is the cache's only writer), so that a poll where
// nothing moved reads no file. Callers hold s.mu.
func (s *Source) cachedRefs() (map[string]plumbing.Hash, error) {
	if s.cached != nil {
		return s.cached, nil
	}
	iter, err := s.repo.Storer.IterReferences()
	if err != nil {
		return nil, fmt.Errorf("read git cache refs: %w", err)
	}
	cached := make(map[string]plumbing.Hash)
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Name().IsBranch() && r.Type() == plumbing.HashReference {
			cached[branchName(r.Name())] = r.Hash()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read git cache refs: %w", err)
	}
	s.cached = cached
	return cached, nil
}

func (s *Source) fetch(ctx context.Context, specs []config.RefSpec) error {
	method, secrets, err := s.auth.method(s.loc)
	if err != nil {
		return fmt.Errorf("%s: %w", s.app, err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	// The remote of this one fetch stores through a byte count.
	store := &limitedStore{Storer: s.repo.Storer, max: s.maxPack}
	err = git.NewRemote(store, s.remote.Config()).FetchContext(ctx, &git.FetchOptions{
		RefSpecs: specs, Depth: s.depth, Auth: method, Tags: git.NoTags, Force: true,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case store.exceeded.Load():
		err = tooLarge(s.maxPack)
	default:
		err = s.timedOut(ctx, err)
	}
	s.removePartialPacks()
	return fmt.Errorf("%s: fetch %d branches from %s: %w", s.app, len(specs), s.loc,
		explainAuth(redact.Error(redact.Values(err, secrets...), s.loc.raw), method))
}

// Tree returns the tree of commit (full hex SHA) as a read-only fs.FS that
// reads the object store directly. It also implements fs.ReadDirFS,
// fs.ReadFileFS, fs.StatFS and fs.ReadLinkFS. The FS stays valid while the
// Source lives.
func (s *Source) Tree(ctx context.Context, commit string) (fs.FS, error) {
	c, err := s.commit(ctx, commit)
	if err != nil {
		return nil, err
	}
	t := &treeFS{mu: &s.mu, store: s.repo.Storer, root: c.TreeHash, mtime: c.Committer.When}
	if s.remote == nil {
		t.sync = s.syncPacks
	}
	return t, nil
}

// CommitTime returns the committer time of commit: when it last landed,
// which is what inactivity expiry measures.
func (s *Source) CommitTime(ctx context.Context, commit string) (time.Time, error) {
	c, err := s.commit(ctx, commit)
	if err != nil {
		return time.Time{}, err
	}
	return c.Committer.When, nil
}

func (s *Source) commit(ctx context.Context, commit string) (*object.Commit, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: commit %s: %w", s.app, commit, err)
	}
	h, err := parseHash(commit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.app, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.remote == nil {
		s.syncPacks()
	}
	c, err := object.GetCommit(s.repo.Storer, h)
	if err != nil && s.remote == nil {
		// Packs may have changed within the directory's mtime granularity.
		s.reindex()
		c, err = object.GetCommit(s.repo.Storer, h)
	}
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("%s: commit %s: %w", s.app, commit, ErrCommitNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: commit %s: %w", s.app, commit, err)
	}
	return c, nil
}

// syncPacks makes go-git read a local repository's pack indexes again when
// git has added or removed packs (commit, push, gc, repack) since they were
// read: go-git reads them once and would otherwise look for objects in packs
// that git has deleted. Callers hold s.mu.
func (s *Source) syncPacks() {
	fi, err := os.Stat(filepath.Join(s.common, "objects", "pack"))
	if err != nil || fi.ModTime().Equal(s.packsMod) {
		return
	}
	s.packsMod = fi.ModTime()
	s.reindex()
}

// reindex drops go-git's pack indexes; the next read loads them afresh.
func (s *Source) reindex() {
	if store, ok := s.repo.Storer.(*filesystem.Storage); ok {
		store.Reindex()
	}
}

// parseHash accepts a full 40-digit hex SHA-1.
func parseHash(s string) (plumbing.Hash, error) {
	if len(s) != 40 {
		return plumbing.ZeroHash, fmt.Errorf("commit %q is not a full 40-digit SHA", s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("commit %q is not hexadecimal", s)
	}
	return plumbing.NewHash(s), nil
}

// explainAuth says plainly when the server refused the credentials given,
// which go-git reports as if none had been sent.
func explainAuth(err error, method transport.AuthMethod) error {
	if method != nil && errors.Is(err, transport.ErrAuthenticationRequired) {
		return fmt.Errorf("credentials rejected (check the auth files): %w", err)
	}
	return err
}

// branchName is a branch ref's name without "refs/heads/" (go-git's Short
// does the same for every kind of ref, at far greater cost).
func branchName(ref plumbing.ReferenceName) string {
	return strings.TrimPrefix(string(ref), "refs/heads/")
}
