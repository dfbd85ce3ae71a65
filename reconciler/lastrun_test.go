package reconciler

import (
	"testing"

	"github.com/arbordev/arbor/workflow"
)

// A record whose first setup never finished — written ahead of a run that
// was interrupted (the replica handed the app over, or arbor stopped) or
// failed on a retried error — must lead to the setup being run again,
// not to "setup failed: waiting for a change or a deploy request".
func TestLastRunOfAnUnfinishedFirstSetup(t *testing.T) {
	for _, phase := range []string{PhaseDeploying, PhaseFailed, PhasePending} {
		rec := &envRecord{State: &envState{Phase: phase, Commit: "c1", ConfigHash: "h1"}}
		last := lastRun(rec)
		if !last.Exists || last.Commit != "" {
			t.Errorf("%s: last run %+v, want one that exists and never finished", phase, last)
		}
		if d := workflow.ChooseStage(last, nil, false); d.Stage == "" {
			t.Errorf("%s: %q, want the setup run again", phase, d.Reason)
		}
	}
	// A halted setup records its run, and waits for a change or a request.
	halted := &envRecord{State: &envState{Phase: PhaseFailed, Commit: "c1", LastRun: &workflow.Last{Exists: true, Commit: "c1", ConfigHash: "h1"}}}
	if last := lastRun(halted); last.Commit != "c1" || last.SetupDone {
		t.Errorf("halted setup: %+v", last)
	}
	// Records of older daemons that were ready count as a finished setup.
	ready := &envRecord{State: &envState{Phase: PhaseReady, Commit: "c1", ConfigHash: "h1"}}
	if last := lastRun(ready); last.Commit != "c1" || !last.SetupDone {
		t.Errorf("ready record: %+v", last)
	}
}
