package workflow

import (
	"fmt"
	"time"

	"github.com/arbordev/arbor/render"
)

// Action is what the daemon does with an environment whose branch exists.
type Action string

// The actions of a Plan.
const (
	ActionNone     Action = "none"     // nothing to run
	ActionRun      Action = "run"      // run Plan.Stage
	ActionHold     Action = "hold"     // auto_deploy: false: a change waits for a deploy request
	ActionTeardown Action = "teardown" // expired: run the teardown, then the environment is gone
)

// PlanInput is what the daemon knows of an environment whose branch is listed.
type PlanInput struct {
	Env  *render.Environment // rendered at the branch's newest commit
	Last Last                // from the environment's record; zero when it has none
	// CommitTime is the committer time of the branch's newest commit.
	CommitTime time.Time
	// Namespace holds the annotations of the environment's namespace (nil
	// when it has none): arbor.dev/keep and the deploy request.
	Namespace map[string]string
	// HandledRequest is the last deploy request acted on, from the record.
	HandledRequest string
	Now            time.Time
}

// Plan is the daemon's next step for one environment.
type Plan struct {
	Action Action
	Stage  string // for ActionRun: setup or patch; for ActionTeardown: teardown
	Reason string
	// Request is the deploy request this plan acts on; store it in the
	// record as handled once the run is done.
	Request string
	// ExpiresAt is when the environment expires (zero: never); reconcile it again then.
	ExpiresAt time.Time
}

// PlanEnvironment decides, for an environment whose branch is listed,
// whether it expired (docs/release-yaml.md#environments), and else which stage to run (ChooseStage),
// taking a pending deploy request into account. A branch whose environment
// expired and has no record gets nothing until its next push.
func PlanEnvironment(in PlanInput) (Plan, error) {
	exp, err := CheckExpiry(in.Env.ExpiresAfter, in.CommitTime, in.Namespace, in.Now)
	if err != nil {
		return Plan{}, err
	}
	if exp.Expired {
		reason := fmt.Sprintf("expired: no commit since %s (expires_after %s)", in.CommitTime.UTC().Format(time.RFC3339), in.Env.ExpiresAfter)
		if in.Last.Exists {
			return Plan{Action: ActionTeardown, Stage: render.StageTeardown, Reason: reason}, nil
		}
		return Plan{Action: ActionNone, Reason: reason + "; the next push recreates it"}, nil
	}
	req, requested := Requested(in.Namespace, in.HandledRequest)
	d := ChooseStage(in.Last, in.Env, requested)
	p := Plan{Action: ActionNone, Stage: d.Stage, Reason: d.Reason, ExpiresAt: exp.At}
	switch {
	case d.Stage != "":
		p.Action = ActionRun
		if requested {
			p.Request = req
		}
	case d.Held:
		p.Action = ActionHold
	}
	return p, nil
}
