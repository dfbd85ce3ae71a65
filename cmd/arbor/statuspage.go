package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/server"
	"github.com/arbordev/arbor/workflow"
	"github.com/prometheus/client_golang/prometheus"
)

// daemonRoutes are what the server exposes of the reconciler (identity
// names this replica on the page). The caller adds the Guard.
func daemonRoutes(rec *reconciler.Reconciler, reg *prometheus.Registry, hooks http.Handler, identity string) server.Routes {
	return server.Routes{
		Page: statusSource{rec: rec, identity: identity},
		Apps: func() any { return rec.Apps() },
		Environments: func(app string) (any, bool) {
			if !rec.HasApp(app) {
				return nil, false
			}
			return rec.Environments(app), true
		},
		Ready:   rec.Ready,
		Metrics: rec.MetricsHandler(reg),
		Hooks:   hooks,
		Deploy: func(ctx context.Context, app, env string) (any, error) {
			v, err := rec.RequestDeploy(ctx, app, env)
			if errors.Is(err, reconciler.ErrNoEnvironment) {
				err = fmt.Errorf("%w: %w", server.ErrNotFound, err)
			}
			return v, err
		},
	}
}

// statusReader is what the status page needs of the reconciler.
type statusReader interface {
	Apps() []reconciler.AppStatus
	Environments(app string) []reconciler.EnvironmentStatus
	Leading() bool
}

// statusSource adapts the reconciler's status to the status page.
type statusSource struct {
	rec      statusReader
	identity string
}

// Snapshot reads every app and environment from the reconciler.
func (s statusSource) Snapshot(context.Context) (server.Snapshot, error) {
	snap := server.Snapshot{Leader: s.rec.Leading(), Identity: s.identity}
	for _, a := range s.rec.Apps() {
		app := server.App{Name: a.Name, Repo: a.Repo}
		if a.ListingError != "" {
			app.Problems = append(app.Problems, server.Problem{Where: a.Name, Message: a.ListingError})
		}
		for _, e := range s.rec.Environments(a.Name) {
			app.Environments = append(app.Environments, pageEnvironment(e))
		}
		snap.Apps = append(snap.Apps, app)
	}
	return snap, nil
}

func pageEnvironment(e reconciler.EnvironmentStatus) server.Environment {
	env := server.Environment{
		Branch: e.Branch, Commit: e.Commit, Namespace: e.Namespace, Phase: e.Phase,
		Updated: e.LastTransition, ExpiresAfter: e.ExpiresAfter,
		Workflow: pageWorkflow(e.Workflow),
	}
	if e.Commit == "" {
		env.Commit = e.InvalidCommit
	}
	for _, u := range e.URLs {
		env.URLs = append(env.URLs, server.Link{Name: u.Service, URL: u.URL})
	}
	for _, l := range e.Links {
		env.Links = append(env.Links, server.Link{Name: l.Name, URL: l.URL})
	}
	for _, p := range e.Problems {
		env.Problems = append(env.Problems, server.Problem{Where: p.Kind + " " + p.Name, Message: string(p.Reason) + ": " + p.Message, Logs: p.Logs})
	}
	if e.LastError != "" {
		env.Problems = append(env.Problems, server.Problem{Message: e.LastError})
	}
	for _, f := range e.Findings {
		msg := f.Message
		if f.Field != "" {
			msg = f.Field + ": " + msg
		}
		env.Problems = append(env.Problems, server.Problem{
			Where: f.Position.String(), Message: msg, Warning: f.Severity == schema.SeverityWarning,
		})
	}
	return env
}

// pageWorkflow counts a workflow's tasks: finished ones are done, a failed one
// marks the workflow failed.
func pageWorkflow(w *workflow.Progress) *server.Workflow {
	if w == nil {
		return nil
	}
	out := &server.Workflow{Name: w.Stage, Step: w.Step, Total: len(w.Tasks)}
	for _, t := range w.Tasks {
		switch t.State {
		case workflow.TaskSucceeded, workflow.TaskSkipped:
			out.Done++
		case workflow.TaskFailed:
			out.Done++
			out.Failed = true
		}
	}
	out.Finished = out.Total > 0 && out.Done == out.Total
	return out
}
