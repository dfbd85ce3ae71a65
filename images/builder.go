package images

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/session"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/singleflight"

	"github.com/arbordev/arbor/internal/redact"
)

// Defaults of BuilderOptions.
const (
	DefaultBuildTimeout  = 20 * time.Minute
	DefaultMaxConcurrent = 2
	DefaultDockerfile    = "Dockerfile"
)

// BuilderOptions configure a Builder; they come from the daemon config's
// images section.
type BuilderOptions struct {
	// Addr is the BuildKit daemon's address: unix:///run/buildkit/buildkitd.sock,
	// tcp://buildkitd.arbor-buildkit:1234.
	Addr string
	// TLS, when set, makes the connection to a tcp:// Addr mutual TLS.
	TLS *TLSFiles
	// Registry is the repository prefix images are pushed under
	// (registry.example.com/previews); a Request's Repository is appended.
	Registry string
	// PlainHTTP makes pushes and lookups speak HTTP, not HTTPS, to Registry
	// (a registry on loopback or inside the cluster).
	PlainHTTP bool
	// AllowedBaseRegistries are the registry hosts and repository prefixes
	// FROM may name (docker.io, ghcr.io/acme). Empty: only scratch and
	// earlier stages.
	AllowedBaseRegistries []string
	// Credentials log in to Registry and to base image registries.
	Credentials *Credentials
	// Timeout bounds one build, push included (default DefaultBuildTimeout).
	Timeout time.Duration
	// MaxContextSize and MaxContextFiles bound one build context
	// (defaults DefaultMaxContextSize, DefaultMaxContextFiles).
	MaxContextSize  int64
	MaxContextFiles int
	// MaxConcurrent bounds the builds running at once (default DefaultMaxConcurrent).
	MaxConcurrent int
	// LogTail is how many lines of the failing step a BuildError keeps
	// (default DefaultLogTail).
	LogTail int
	// WorkDir holds each build's context while it is sent (default: the
	// system's temporary directory).
	WorkDir string
}

// TLSFiles name the PEM files of a mutual TLS connection to BuildKit: the CA
// that signed buildkitd's certificate, and arbor's client certificate and key.
type TLSFiles struct {
	CA, Cert, Key string
	// ServerName is the name buildkitd's certificate must carry; default:
	// the host of the address.
	ServerName string
}

// Request is one service's image to build, from the Release template's
// `build` keys and the commit's tree.
type Request struct {
	// Repository is the image's repository under the builder's Registry,
	// e.g. "shop/web".
	Repository string
	// Source is the commit's tree (gitsource's Tree); nothing outside
	// Context is sent, and nothing is read from git again.
	Source fs.FS
	// Context is the build context directory in Source ("." or "" for the root).
	Context string
	// ContextKey is the content key of the Context directory: its git tree
	// hash at the commit, which the git object store already has, or
	// ContextHash for a source that is not a git tree.
	ContextKey string
	// Dockerfile is the Dockerfile's path relative to Context (default
	// "Dockerfile"); it must lie inside Source.
	Dockerfile string
	Args       map[string]string
	Target     string
}

// Result is a built (or found) image.
type Result struct {
	// Ref is the image pinned by digest: what a workload is rolled out with.
	Ref string
	// Tag is the content-keyed tag the image is stored under.
	Tag    string
	Digest string
	// Built is true when this call (or a concurrent one it shared) ran a
	// build; false when the registry had the image already.
	Built bool
	// Log is a built image's build log: each step and its last lines
	// (credentials masked); nil when nothing was built.
	Log []string
}

// A successful build's Log keeps at most summaryStepLines lines per step and
// summaryLines in all.
const (
	summaryStepLines = 5
	summaryLines     = 100
)

// Builder builds images with a BuildKit daemon and pushes them. It is safe
// for concurrent use; requests for the same key share one build.
type Builder struct {
	opts    BuilderOptions
	allowed allowList
	reg     registry
	sem     chan struct{}
	group   singleflight.Group
	solves  atomic.Int64
	running atomic.Int64 // solves in flight
	peak    atomic.Int64 // the most solves in flight at once, for tests

	mu     sync.Mutex
	client *client.Client
}

// NewBuilder checks the options and returns a Builder. It does not dial
// BuildKit yet: the first build does.
func NewBuilder(opts BuilderOptions) (*Builder, error) {
	if opts.Addr == "" {
		return nil, errors.New("images: no buildkit address")
	}
	if opts.Registry == "" {
		return nil, errors.New("images: no registry to push to")
	}
	allowed, err := newAllowList(opts.AllowedBaseRegistries)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultBuildTimeout
	}
	if opts.MaxContextSize <= 0 {
		opts.MaxContextSize = DefaultMaxContextSize
	}
	if opts.MaxContextFiles <= 0 {
		opts.MaxContextFiles = DefaultMaxContextFiles
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.LogTail <= 0 {
		opts.LogTail = DefaultLogTail
	}
	opts.Registry = strings.TrimSuffix(opts.Registry, "/")
	return &Builder{
		opts:    opts,
		allowed: allowed,
		reg:     registry{creds: opts.Credentials, plainHTTP: opts.PlainHTTP},
		sem:     make(chan struct{}, opts.MaxConcurrent),
	}, nil
}

// Solves is how many builds this Builder has sent to BuildKit: a figure for
// metrics and for tests that a build was, or was not, run.
func (b *Builder) Solves() int64 { return b.solves.Load() }

// Close closes the connection to BuildKit.
func (b *Builder) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client == nil {
		return nil
	}
	err := b.client.Close()
	b.client = nil
	return err
}

// Build returns the image of req pinned by digest: the one in the registry
// under the request's content key when there is one, else a new build,
// pushed. A bad Dockerfile or context is an error naming FILE:LINE; a failed
// build is a *BuildError.
func (b *Builder) Build(ctx context.Context, req Request) (Result, error) {
	in, err := b.prepare(req)
	if err != nil {
		return Result{}, err
	}
	// The shared build outlives a caller that gives up (another may still
	// wait for it) but not the builder's own time limit.
	ch := b.group.DoChan(in.tag, func() (any, error) {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.Timeout)
		defer cancel()
		return b.buildOnce(bctx, in)
	})
	select {
	case <-ctx.Done():
		return Result{}, fmt.Errorf("build %s: %w", in.tag, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return Result{}, r.Err
		}
		return r.Val.(Result), nil
	}
}

// input is a checked request.
type input struct {
	req        Request
	tag        string // full reference: registry/repository:arbor-KEY
	context    string // cleaned context directory
	dockerfile []byte
	dfPath     string // in Source, for messages
}

// prepare checks a request and reads its Dockerfile.
func (b *Builder) prepare(req Request) (input, error) {
	if req.Source == nil || req.ContextKey == "" || req.Repository == "" {
		return input{}, errors.New("images: a request needs a Source, a ContextKey and a Repository")
	}
	ctxDir := path.Clean("./" + strings.TrimPrefix(req.Context, "/"))
	if !fs.ValidPath(ctxDir) {
		return input{}, fmt.Errorf("build context %q: leaves the repository", req.Context)
	}
	if info, err := fs.Stat(req.Source, ctxDir); err != nil {
		return input{}, fmt.Errorf("build context %s: %w", ctxDir, err)
	} else if !info.IsDir() {
		return input{}, fmt.Errorf("build context %s: not a directory", ctxDir)
	}
	df := req.Dockerfile
	if df == "" {
		df = DefaultDockerfile
	}
	dfPath := path.Join(ctxDir, df)
	if path.IsAbs(df) || !fs.ValidPath(dfPath) {
		return input{}, fmt.Errorf("dockerfile %q: leaves the repository", df)
	}
	dt, err := readBounded(req.Source, dfPath, MaxDockerfileSize)
	if err != nil {
		return input{}, err
	}
	if err := checkDockerfile(dfPath, dt, req.Args, req.Target, b.allowed); err != nil {
		return input{}, err
	}
	ref := b.opts.Registry + "/" + strings.Trim(req.Repository, "/") + ":" + tag(Key(req.ContextKey, dt, req.Args, req.Target))
	if _, err := b.reg.parse(ref); err != nil {
		return input{}, fmt.Errorf("image %s: %w", ref, err)
	}
	return input{req: req, tag: ref, context: ctxDir, dockerfile: dt, dfPath: dfPath}, nil
}

// readBounded reads a file of at most max bytes.
func readBounded(fsys fs.FS, p string, max int64) ([]byte, error) {
	info, err := fs.Stat(fsys, p)
	if err != nil {
		return nil, fmt.Errorf("dockerfile %s: %w", p, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("dockerfile %s: not a regular file", p)
	}
	if info.Size() > max {
		return nil, fmt.Errorf("dockerfile %s: %d bytes, more than the %d a Dockerfile may have", p, info.Size(), max)
	}
	return fs.ReadFile(fsys, p)
}

// buildOnce finds the image in the registry or builds it.
func (b *Builder) buildOnce(ctx context.Context, in input) (Result, error) {
	ref, _ := b.reg.parse(in.tag)
	if d, found, err := b.reg.digest(ctx, ref); err != nil {
		return Result{}, err
	} else if found {
		return Result{Ref: pinned(ref, d), Tag: in.tag, Digest: d}, nil
	}
	select {
	case b.sem <- struct{}{}:
		defer func() { <-b.sem }()
	case <-ctx.Done():
		return Result{}, fmt.Errorf("build %s: waiting for a free builder: %w", in.tag, ctx.Err())
	}
	d, log, err := b.solve(ctx, in)
	if err != nil {
		return Result{}, err
	}
	return Result{Ref: pinned(ref, d), Tag: in.tag, Digest: d, Built: true, Log: log}, nil
}

// solve sends one build to BuildKit and returns the pushed image's digest
// and the build's log (summary).
func (b *Builder) solve(ctx context.Context, in input) (string, []string, error) {
	work, err := os.MkdirTemp(b.opts.WorkDir, "arbor-build-")
	if err != nil {
		return "", nil, fmt.Errorf("build %s: %w", in.tag, err)
	}
	defer os.RemoveAll(work)
	ctxDir, dfDir := filepath.Join(work, "context"), filepath.Join(work, "dockerfile")
	for _, d := range []string{ctxDir, dfDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return "", nil, fmt.Errorf("build %s: %w", in.tag, err)
		}
	}
	lim := contextLimits{maxSize: b.opts.MaxContextSize, maxFiles: b.opts.MaxContextFiles}
	if err := writeContext(in.req.Source, in.context, ctxDir, lim); err != nil {
		return "", nil, err
	}
	// The Dockerfile sent is the one checked, not a second read of the tree.
	if err := os.WriteFile(filepath.Join(dfDir, DefaultDockerfile), in.dockerfile, 0o644); err != nil {
		return "", nil, fmt.Errorf("build %s: %w", in.tag, err)
	}
	opt, err := b.solveOpt(in, ctxDir, dfDir)
	if err != nil {
		return "", nil, err
	}
	c, err := b.dial(ctx)
	if err != nil {
		return "", nil, err
	}
	b.solves.Add(1)
	for n := b.running.Add(1); ; {
		if p := b.peak.Load(); n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	defer b.running.Add(-1)
	log := newBuildLog()
	status := make(chan *client.SolveStatus)
	done := make(chan struct{})
	go func() { log.consume(status); close(done) }()
	resp, err := c.Solve(ctx, nil, opt, status) // closes status
	<-done
	secrets := b.opts.Credentials.secrets()
	if err != nil {
		if ctx.Err() != nil {
			return "", nil, &BuildError{Image: in.tag, Reason: fmt.Sprintf("did not finish within %s (images: build_timeout)", b.opts.Timeout)}
		}
		return "", nil, log.failure(in.tag, err, b.opts.LogTail, secrets)
	}
	d := resp.ExporterResponse[exptypes.ExporterImageDigestKey]
	if d == "" {
		return "", nil, fmt.Errorf("build %s: buildkit reported no image digest", in.tag)
	}
	return d, log.summary(summaryStepLines, summaryLines, secrets), nil
}

func (b *Builder) solveOpt(in input, ctxDir, dfDir string) (client.SolveOpt, error) {
	ctxFS, err := fsutil.NewFS(ctxDir)
	if err != nil {
		return client.SolveOpt{}, fmt.Errorf("build %s: %w", in.tag, err)
	}
	dfFS, err := fsutil.NewFS(dfDir)
	if err != nil {
		return client.SolveOpt{}, fmt.Errorf("build %s: %w", in.tag, err)
	}
	attrs := map[string]string{
		"filename": DefaultDockerfile,
		// RUN steps get no network: a branch's build reaches nothing.
		"force-network-mode": "none",
	}
	if in.req.Target != "" {
		attrs["target"] = in.req.Target
	}
	for k, v := range in.req.Args {
		attrs["build-arg:"+k] = v
	}
	exp := map[string]string{"name": in.tag, "push": "true"}
	if b.opts.PlainHTTP {
		exp["registry.insecure"] = "true"
	}
	return client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS},
		Exports:       []client.ExportEntry{{Type: client.ExporterImage, Attrs: exp}},
		Session:       []session.Attachable{b.opts.Credentials.attachable()},
		SourcePolicy:  b.allowed.sourcePolicy(),
		// BuildKit sends a local source incrementally, judging files by
		// size and mtime, against what it kept from the last transfer with
		// the same shared key. Every file is sent with one mtime
		// (contextMTime), so only inputs of the same content key may share
		// that state: else an edit that keeps a file's size is not sent.
		SharedKey: in.tag,
	}, nil
}

// dial connects to BuildKit once and keeps the connection.
func (b *Builder) dial(ctx context.Context) (*client.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client != nil {
		return b.client, nil
	}
	var opts []client.ClientOpt
	if t := b.opts.TLS; t != nil {
		opts = append(opts, client.WithServerConfig(t.ServerName, t.CA), client.WithCredentials(t.Cert, t.Key))
	}
	c, err := client.New(ctx, b.opts.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to buildkit at %s: %w", redact.URL(b.opts.Addr), err)
	}
	b.client = c
	return c, nil
}

// redactErr masks every credential in err's message.
func redactErr(err error, c *Credentials) error {
	return redact.Values(err, c.secrets()...)
}
