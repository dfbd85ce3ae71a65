package reconciler

import (
	"testing"
	"time"

	"github.com/arbordev/arbor/traffic"
)

// TestTrafficObserve: a namespace had a request when its counter is above
// zero and differs from the endpoint's previous reading (or the endpoint,
// or the namespace on it, is read for the first time).
func TestTrafficObserve(t *testing.T) {
	var ts trafficState
	t0 := time.Unix(1000, 0)
	ts.observe(t0, map[string]traffic.Counts{"ep1": {"a": 3, "zero": 0}})
	if got := ts.lastRequest("a"); !got.Equal(t0) {
		t.Errorf("a, first reading above zero: last request %v, want %v", got, t0)
	}
	if got := ts.lastRequest("zero"); !got.IsZero() {
		t.Errorf("zero, first reading at zero: last request %v, want none", got)
	}
	t1 := t0.Add(time.Minute)
	ts.observe(t1, map[string]traffic.Counts{"ep1": {"a": 3, "zero": 0, "new": 1}, "ep2": {"b": 2}})
	if got := ts.lastRequest("a"); !got.Equal(t0) {
		t.Errorf("a, unchanged: last request %v, want %v", got, t0)
	}
	if got := ts.lastRequest("new"); !got.Equal(t1) {
		t.Errorf("new on a known endpoint: last request %v, want %v", got, t1)
	}
	if got := ts.lastRequest("b"); !got.Equal(t1) {
		t.Errorf("b on a new endpoint: last request %v, want %v", got, t1)
	}
	t2 := t1.Add(time.Minute)
	ts.observe(t2, map[string]traffic.Counts{"ep1": {"a": 1, "zero": 0, "new": 1}, "ep2": {"b": 2}})
	if got := ts.lastRequest("a"); !got.Equal(t2) {
		t.Errorf("a, counter reset and moved: last request %v, want %v", got, t2)
	}
	if got := ts.lastRequest("b"); !got.Equal(t1) {
		t.Errorf("b, unchanged: last request %v, want %v", got, t1)
	}
}
