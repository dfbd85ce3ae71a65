package reconciler

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestWakeDueForgetsOldRequests: a wake request of a pause is written again
// only after wakeRepeat, and what is kept of the requests is only those
// still holding one back (not every namespace ever woken).
func TestWakeDueForgetsOldRequests(t *testing.T) {
	t0 := time.Unix(1000, 0)
	clk := clocktesting.NewFakeClock(t0)
	r := &Reconciler{clock: clk}
	since := t0.Add(-time.Hour)
	if !r.wakeDue("a", since) {
		t.Fatal("first request of a: not due")
	}
	if r.wakeDue("a", since) {
		t.Error("a again at once: due; want held back for wakeRepeat")
	}
	if !r.wakeDue("a", since.Add(time.Second)) {
		t.Error("a paused again since: not due")
	}
	clk.Step(wakeRepeat)
	if !r.wakeDue("b", since) {
		t.Fatal("first request of b: not due")
	}
	if len(r.wakeSent) != 1 {
		t.Errorf("kept %d namespaces' requests after wakeRepeat, want 1 (b's): %v", len(r.wakeSent), r.wakeSent)
	}
	if !r.wakeDue("a", since.Add(time.Second)) {
		t.Error("a after wakeRepeat: not due")
	}
}
