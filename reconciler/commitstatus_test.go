package reconciler

import (
	"testing"
	"time"

	"github.com/arbordev/arbor/forge"
	"github.com/arbordev/arbor/render"
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

// TestCommitStatusPausedAndWaitingForSlot: a paused environment's status
// is success (it exists, its data kept) and says why, where and what wakes
// it; a branch waiting for a slot is pending with the slot message, on the
// commit that waits; both keep their comment (a slot wait is not skipped).
func TestCommitStatusPausedAndWaitingForSlot(t *testing.T) {
	since := time.Date(2026, 11, 28, 19, 0, 0, 0, time.UTC)
	urls := []render.URL{{Service: "web", URL: "https://web-x.test.local"}}
	waking := envState{Phase: PhasePaused, Commit: "c1", Namespace: "shop-x", Branch: "feature/x", EnvID: "x", URLs: urls,
		Pause: &pauseState{Paused: true, Reason: reasonIdle, Since: since, Hosts: []string{"web-x.test.local"}}}
	sha, s, ok := commitStatus("shop", &waking, "")
	if !ok || sha != "c1" || s.State != forge.StateSuccess || s.Description != "paused (idle) in shop-x; wakes on the next request" || s.TargetURL != urls[0].URL {
		t.Errorf("paused, waking on request: %q %+v %v", sha, s, ok)
	}
	api := waking
	api.Pause = &pauseState{Paused: true, Reason: reasonAPI, Since: since} // no host routed to the waking endpoint
	if _, s, ok := commitStatus("shop", &api, ""); !ok || s.State != forge.StateSuccess ||
		s.Description != "paused (api) in shop-x; resume with arbor env resume shop x" || s.TargetURL != "" {
		t.Errorf("paused, not waking on request: %+v %v", s, ok)
	}

	msg := slotWait("shop", 3, 3, 0)
	if msg != "Waiting for a slot: 3 of 3 environments of shop in use" {
		t.Errorf("slot message %q", msg)
	}
	if m := slotWait("shop", 2, 3, 1); m != "Waiting for a slot: 2 of 3 environments of shop in use, 1 branch before this one" {
		t.Errorf("slot message with a branch ahead %q", m)
	}
	slot := envState{Phase: PhaseWaiting, Branch: "feature/y", TargetCommit: "c2", Message: msg}
	if sha, s, ok := commitStatus("shop", &slot, ""); !ok || sha != "c2" || s.State != forge.StatePending || s.Description != msg {
		t.Errorf("waiting for a slot: %q %+v %v", sha, s, ok)
	}
	if !waitingForSlot(&slot) || waitingForSlot(&envState{Phase: PhaseWaiting, Message: "Waiting for image r/web:new"}) {
		t.Error("waitingForSlot tells a slot wait from an image wait wrongly")
	}
}
