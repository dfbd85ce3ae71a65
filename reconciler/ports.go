package reconciler

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// Source is one app's repository: what the reconciler needs of gitsource.
type Source interface {
	// ListBranches returns branch → commit and the default branch. An
	// empty listing is an error.
	ListBranches(ctx context.Context) (map[string]string, string, error)
	// Fetch brings the listed commits into the cache; nothing when nothing moved.
	Fetch(ctx context.Context, branches map[string]string) error
	// Tree is a commit's tree.
	Tree(ctx context.Context, commit string) (fs.FS, error)
	// Triggers fires when the repository is known to have changed (fsnotify, webhook).
	Triggers() <-chan struct{}
	// CommitTime is a commit's committer time (expires_after counts from it).
	CommitTime(ctx context.Context, commit string) (time.Time, error)
	// TreeHash is the git tree hash of a directory at a commit: the content
	// key of a build context.
	TreeHash(ctx context.Context, commit, dir string) (string, error)
}

// ErrNoConfig is what a Loader returns (wrapped) when a branch has no configuration.
var ErrNoConfig = errors.New("no configuration")

// Loader loads a branch's configuration from its tree. Findings with errors
// make the configuration invalid; a nil Config with ErrNoConfig means the
// branch has none.
// Parameters are the app's values from the daemon config.
type Loader func(fsys fs.FS, path string, opts schema.LoadOptions) (*schema.Config, schema.Findings, error)

// Renderer renders an environment; render.Render.
type Renderer func(in render.Input) (*render.Environment, error)
