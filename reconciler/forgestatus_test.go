package reconciler

import (
	"strings"
	"testing"

	"github.com/arbordev/arbor/forge"
)

// The commit status puts the diagnosis first: what to fix, then the
// daemon's error.
func TestCommitStatusCarriesTheDiagnosis(t *testing.T) {
	const problems = "service web: CrashLoopBackOff (exit code 3)"
	st := &envState{Namespace: "shop-x", Commit: "abc", Phase: PhaseFailed, LastError: "wait: timed out"}
	_, s, ok := commitStatus("shop", st, problems)
	if !ok || s.State != forge.StateFailure || s.Description != problems+"; wait: timed out" {
		t.Errorf("failed: %+v", s)
	}
	st.Phase = PhaseDeploying
	if _, s, _ := commitStatus("shop", st, problems); !strings.HasPrefix(s.Description, "deploying to shop-x: "+problems) {
		t.Errorf("deploying: %+v", s)
	}
	if _, s, _ := commitStatus("shop", st, ""); s.Description != "deploying to shop-x" {
		t.Errorf("deploying, no problem: %+v", s)
	}
	st.Phase = PhaseReady
	if _, s, _ := commitStatus("shop", st, problems); s.State != forge.StateSuccess || s.Description != "environment ready in shop-x, with problems: "+problems {
		t.Errorf("ready with a problem: %+v", s)
	}
}
