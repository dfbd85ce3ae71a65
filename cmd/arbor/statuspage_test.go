package main

import (
	"context"
	"testing"
	"time"

	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/workflow"
)

// fixedStatus is a statusReader holding fixed values.
type fixedStatus struct {
	apps    []reconciler.AppStatus
	envs    map[string][]reconciler.EnvironmentStatus
	leading bool
}

func (f fixedStatus) Apps() []reconciler.AppStatus { return f.apps }
func (f fixedStatus) Environments(app string) []reconciler.EnvironmentStatus {
	return f.envs[app]
}
func (f fixedStatus) Leading() bool { return f.leading }

func TestStatusSourceMapsReconcilerStatus(t *testing.T) {
	changed := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	src := statusSource{identity: "arbor-0", rec: fixedStatus{
		leading: true,
		apps: []reconciler.AppStatus{
			{Name: "shop", Repo: "https://git.example.com/shop.git"},
			{Name: "docs", Repo: "/srv/docs.git", ListingError: "list branches: connection refused"},
		},
		envs: map[string][]reconciler.EnvironmentStatus{"shop": {{
			App: "shop", Branch: "feature/x", InvalidCommit: "abcdef0123456789", Namespace: "shop-feature-x",
			Phase: reconciler.PhaseInvalid, LastTransition: changed, ExpiresAfter: "72h",
			URLs:  []render.URL{{Service: "web", URL: "http://web.example.com"}},
			Links: []schema.Link{{Name: "Logs", URL: "https://logs.example.com"}},
			Findings: schema.Findings{{
				Position: schema.Position{File: ".release.yaml", Line: 3, Column: 5},
				Field:    "services[0].ports[0].port", Severity: schema.SeverityError, Message: "70000 is not a port",
			}},
			Workflow: &workflow.Progress{Stage: "setup", Step: "app", Tasks: []workflow.Task{
				{Name: "services.db", State: workflow.TaskSucceeded}, {Name: "jobs.migrate", State: workflow.TaskFailed}, {Name: "services.web", State: workflow.TaskPending},
			}},
		}}},
	}}
	snap, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Leader || snap.Identity != "arbor-0" || len(snap.Apps) != 2 {
		t.Fatalf("snapshot: %+v", snap)
	}
	if p := snap.Apps[1].Problems; len(p) != 1 || p[0].Message != "list branches: connection refused" {
		t.Errorf("docs' listing error: %+v", p)
	}
	env := snap.Apps[0].Environments[0]
	if env.Commit != "abcdef0123456789" || env.Phase != "Invalid" || !env.Updated.Equal(changed) || env.ExpiresAfter != "72h" {
		t.Errorf("environment: %+v", env)
	}
	if len(env.Problems) != 1 || env.Problems[0].Where != ".release.yaml:3:5" || env.Problems[0].Message != "services[0].ports[0].port: 70000 is not a port" {
		t.Errorf("findings: %+v", env.Problems)
	}
	if len(env.URLs) != 1 || env.URLs[0].URL != "http://web.example.com" || len(env.Links) != 1 || env.Links[0].Name != "Logs" {
		t.Errorf("links: %+v %+v", env.URLs, env.Links)
	}
	if w := env.Workflow; w == nil || w.Name != "setup" || w.Step != "app" || w.Done != 2 || w.Total != 3 || !w.Failed || w.Finished {
		t.Errorf("workflow: %+v", w)
	}
}

// TestStatusPageShowsImagesAndWarnings: what an environment waits for, its
// failed build's step and log lines, and its render warnings reach the page.
func TestStatusPageShowsImagesAndWarnings(t *testing.T) {
	env := pageEnvironment(reconciler.EnvironmentStatus{
		Branch: "feature", Phase: reconciler.PhaseFailed, Message: "Waiting for image reg/shop/web:abc",
		LastError: "shop@feature: commit abc: service web: build failed",
		Warnings:  []string{"chart site: rendered from the cache: repository down"},
		Images: []reconciler.ImageStatus{
			{Service: "api", Pinned: "reg/shop/api@sha256:00"},
			{Service: "web", Error: "build failed", Step: "[2/2] RUN make", Log: []string{"l1", "l2", "l3", "l4", "l5", "l6"}},
		},
	})
	want := []string{
		"Waiting for image reg/shop/web:abc",
		"shop@feature: commit abc: service web: build failed",
		"services.web: build step [2/2] RUN make; last lines: l2 | l3 | l4 | l5 | l6",
		"chart site: rendered from the cache: repository down",
	}
	var got []string
	for _, p := range env.Problems {
		s := p.Message
		if p.Where != "" {
			s = p.Where + ": " + s
		}
		got = append(got, s)
	}
	if len(got) != len(want) {
		t.Fatalf("problems %q; want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("problem %d: %q; want %q", i, got[i], want[i])
		}
	}
	if !env.Problems[0].Warning || env.Problems[1].Warning || !env.Problems[3].Warning {
		t.Errorf("warning flags %+v: the wait and the render warning are warnings, the error is not", env.Problems)
	}
}
