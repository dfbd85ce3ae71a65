package workflow

import (
	"testing"
	"time"

	"github.com/arbordev/arbor/render"
)

func TestPlanEnvironment(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	env := &render.Environment{Commit: "c2", ConfigHash: "h", AutoDeploy: true, ExpiresAfter: "1h"}
	held := *env
	held.AutoDeploy = false
	ran := Last{Exists: true, Commit: "c1", ConfigHash: "h", SetupDone: true}
	req := map[string]string{AnnotationDeployRequested: "t1"}
	cases := []struct {
		name    string
		in      PlanInput
		action  Action
		stage   string
		request string
	}{
		{"new", PlanInput{Env: env, CommitTime: now}, ActionRun, render.StageSetup, ""},
		{"push", PlanInput{Env: env, Last: ran, CommitTime: now}, ActionRun, render.StagePatch, ""},
		{"expired", PlanInput{Env: env, Last: ran, CommitTime: now.Add(-2 * time.Hour)}, ActionTeardown, render.StageTeardown, ""},
		{"expired, never created", PlanInput{Env: env, CommitTime: now.Add(-2 * time.Hour)}, ActionNone, "", ""},
		{"expired but kept", PlanInput{Env: env, Last: ran, CommitTime: now.Add(-2 * time.Hour), Namespace: map[string]string{render.AnnotationKeep: "true"}}, ActionRun, render.StagePatch, ""},
		{"held", PlanInput{Env: &held, Last: ran, CommitTime: now}, ActionHold, "", ""},
		{"held, requested", PlanInput{Env: &held, Last: ran, CommitTime: now, Namespace: req}, ActionRun, render.StagePatch, "t1"},
		{"held, request handled", PlanInput{Env: &held, Last: ran, CommitTime: now, Namespace: req, HandledRequest: "t1"}, ActionHold, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.Now = now
			p, err := PlanEnvironment(c.in)
			if err != nil || p.Action != c.action || p.Stage != c.stage || p.Request != c.request || p.Reason == "" {
				t.Fatalf("got %+v, %v; want %s %q request %q", p, err, c.action, c.stage, c.request)
			}
		})
	}
}
