package reconciler

import (
	"testing"

	"github.com/arbordev/arbor/forge"
)

// TestCommitStatusOfTheCommitThatWaits: while an environment waits for the
// images of a new commit, or failed before running it, the forge's status
// goes on that commit, not on the one still running.
func TestCommitStatusOfTheCommitThatWaits(t *testing.T) {
	cases := []struct {
		st    envState
		sha   string
		state forge.State
	}{
		{envState{Phase: PhaseWaiting, Commit: "old", TargetCommit: "new", Message: "Waiting for image r/web:new"}, "new", forge.StatePending},
		{envState{Phase: PhaseFailed, Commit: "old", TargetCommit: "new", LastError: "build failed"}, "new", forge.StateFailure},
		{envState{Phase: PhaseFailed, Commit: "new", LastError: "rollout failed"}, "new", forge.StateFailure},
		{envState{Phase: PhaseReady, Commit: "new", Namespace: "ns"}, "new", forge.StateSuccess},
	}
	for _, c := range cases {
		sha, s, ok := commitStatus("shop", &c.st, "")
		if !ok || sha != c.sha || s.State != c.state {
			t.Errorf("%s: status on %q (%v, %v); want %s on %q", c.st.Phase, sha, s.State, ok, c.state, c.sha)
		}
	}
	if _, s, _ := commitStatus("shop", &cases[0].st, ""); s.Description != "Waiting for image r/web:new" {
		t.Errorf("waiting description %q", s.Description)
	}
	if !transient(PhaseWaiting) {
		t.Error("Waiting passes on its own: the comment is not edited for it")
	}
}

// TestRecordedImagesKeepFailuresOnly: the record keeps a failed build's log
// lines and drops a successful build's log (the leader's memory has it).
func TestRecordedImagesKeepFailuresOnly(t *testing.T) {
	ims := []ImageStatus{
		{Service: "api", Pinned: "r/api@sha256:0", Log: []string{"[1/1] COPY", "  done"}},
		{Service: "web", Error: "build failed", Step: "[2/2] RUN make", Log: []string{"make: error"}},
	}
	got := recordedImages(ims)
	if got[0].Log != nil || len(got[1].Log) != 1 || got[0].Pinned != "r/api@sha256:0" {
		t.Errorf("recorded %+v; want api's log dropped, web's kept, the pins kept", got)
	}
	if len(ims[0].Log) != 2 {
		t.Error("recordedImages changed the status it was given")
	}
}
