package reconciler

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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

// Engine is what the reconciler needs of the apply engine.
type Engine interface {
	// CreateNamespace applies an environment's Namespace object (as Apply
	// does) and reports whether this call created it.
	CreateNamespace(ctx context.Context, namespace *unstructured.Unstructured) (created bool, err error)
	// Apply server-side applies objs, confined to ns, writing only what
	// differs; it returns the objects it wrote.
	Apply(ctx context.Context, ns string, objs []*unstructured.Unstructured) ([]render.ObjectRef, error)
	// Wait returns when every object is ready, or an error naming those that are not.
	Wait(ctx context.Context, ns string, objs []*unstructured.Unstructured) error
	// Prune deletes what previous holds and objs does not (arbor's objects only).
	Prune(ctx context.Context, ns string, previous []render.ObjectRef, objs []*unstructured.Unstructured) error
	// Delete removes an environment: its inventory and its namespace.
	Delete(ctx context.Context, ns string, inventory []render.ObjectRef) error
}
