// Package server is the daemon's one HTTP server (New, Serve): the status
// page, the status API, health, metrics, the webhooks the daemon mounts, and
// the actions on an environment (deploy, pause, resume, extend, delete,
// logs), each authorized by the Authorizer (TokenReview, then a
// SubjectAccessReview on a verb of arbor's; docs/api.md). The daemon
// supplies the values and the actions (Routes); the server owns the paths,
// methods, status codes and bounds. The waking endpoint of paused
// environments (WakeHandler) is served on a listener of its own.
//
// The status page is one self-contained HTML page, rendered on the server
// with html/template, listing every app and its environments. It needs no
// external assets (inline CSS, no script), works offline, and reloads itself.
//
// The page reads status through the narrow Source interface and its plain
// structs below, so that it depends on nothing but what it shows; the daemon
// adapts its status model to them. Nothing here holds environment variable
// values, and credentials embedded in URLs are removed before display.
package server

import (
	"context"
	"time"
)

// Source gives the status to show. Snapshot is called once per page view.
type Source interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) (Snapshot, error)

// Snapshot calls f.
func (f SourceFunc) Snapshot(ctx context.Context) (Snapshot, error) { return f(ctx) }

// Snapshot is the status of every app at one moment.
type Snapshot struct {
	Apps []App
	// Leader is false on a standby replica, whose view may lag the leader's.
	Leader bool
	// Identity names this replica (the pod name), shown in the footer.
	Identity string
}

// App is one configured app.
type App struct {
	Name string
	Repo string // URL or path; user:password@ is removed before display
	// Problems are app-wide: a failed branch listing, an unreadable credential.
	Problems     []Problem
	Environments []Environment
}

// Environment is one branch's environment.
type Environment struct {
	Branch    string
	Commit    string // full SHA; the page shows the first 7 characters
	Namespace string
	Phase     string // e.g. Ready, Progressing, Failed, Deleting, Pending
	Workflow  *Workflow
	URLs      []Link
	Links     []Link // custom_links
	// Problems hold the last error (and any findings) of the environment.
	Problems  []Problem
	Created   time.Time // zero: unknown
	Updated   time.Time // last phase transition; zero: unknown
	ExpiresAt time.Time // zero: unknown or never; see ExpiresAfter
	// ExpiresAfter is the template's expires_after ("72h"), shown when
	// ExpiresAt is not known; "" with a zero ExpiresAt means never.
	ExpiresAfter string
}

// Workflow is the progress of the workflow that runs or ran last.
type Workflow struct {
	Name     string // setup, patch, teardown...
	Step     string // current (or last) step's name
	Done     int    // tasks (or steps) finished
	Total    int    // tasks (or steps) in the workflow
	Finished bool
	Failed   bool
}

// Link is a named URL.
type Link struct {
	Name string
	URL  string
}

// Problem is an error or warning with the place it comes from: FILE:LINE[:COL]
// for configuration findings, Kind/namespace/name for an object.
type Problem struct {
	Where   string
	Message string
	Warning bool
	// Logs are a failed container's last lines, shown folded under the message.
	Logs []string
}
