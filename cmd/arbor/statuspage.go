package main

import (
	"context"
	"net/http"
	"strings"

	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/server"
	"github.com/arbordev/arbor/workflow"
	"github.com/prometheus/client_golang/prometheus"
)

// daemonRoutes are what the server exposes of the reconciler (identity
// names this replica on the page). The caller adds the Guard.
func daemonRoutes(rec daemonView, reg *prometheus.Registry, hooks http.Handler, identity string) server.Routes {
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
			return v, apiError(err)
		},
	}
}

// wakeOf adapts the reconciler's Wake to the waking endpoint's.
func wakeOf(rec *reconciler.Fleet) server.Wake {
	return func(ctx context.Context, host string) (server.WakeState, error) {
		res, err := rec.Wake(ctx, host)
		switch {
		case !res.Found:
			return server.WakeUnknown, err
		case res.Awake:
			return server.WakeAwake, err
		}
		return server.WakeWaking, err
	}
}

// daemonView is what the server reads of the daemon: a reconciler.Fleet.
type daemonView interface {
	statusReader
	HasApp(app string) bool
	Ready() bool
	MetricsHandler(reg *prometheus.Registry) http.Handler
	RequestDeploy(ctx context.Context, app, env string) (workflow.DeployResponse, error)
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
	if e.Message != "" {
		env.Problems = append(env.Problems, server.Problem{Message: e.Message, Warning: true})
	}
	if e.LastError != "" {
		env.Problems = append(env.Problems, server.Problem{Message: e.LastError})
	}
	env.Problems = append(env.Problems, imageProblems(e.Images)...)
	for _, w := range e.Warnings {
		env.Problems = append(env.Problems, server.Problem{Message: w, Warning: true})
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

// imageProblems are the failed builds' steps and their last log lines
// (the error itself is the environment's last error).
func imageProblems(ims []reconciler.ImageStatus) []server.Problem {
	var out []server.Problem
	for _, im := range ims {
		if im.Step == "" && len(im.Log) == 0 {
			continue
		}
		log := im.Log
		if len(log) > 5 {
			log = log[len(log)-5:]
		}
		msg := "build step " + im.Step
		if len(log) > 0 {
			msg += "; last lines: " + strings.Join(log, " | ")
		}
		out = append(out, server.Problem{Where: "services." + im.Service, Message: msg})
	}
	return out
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
