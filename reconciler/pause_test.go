package reconciler

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/arbordev/arbor/config"
)

// pauseReconciler is a Reconciler with one app "a" paused as pauseYAML says
// (the app's pause: block), on a fake clock: enough for decidePause.
func pauseReconciler(t *testing.T, pauseYAML string, now time.Time) (*Reconciler, *clocktesting.FakeClock) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "repo"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "arbor.yaml")
	if err := os.WriteFile(path, []byte("apps:\n- name: a\n  repo: repo\n  pause:\n"+pauseYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(now)
	return &Reconciler{apps: map[string]*appRunner{"a": {cfg: cfg.Apps[0]}}, clock: clk}, clk
}

func at(day, hh, mm int) time.Time { return time.Date(2026, 11, day, hh, mm, 0, 0, time.UTC) } // the 23rd is a Monday

func record(commit string, p *pauseState, ann map[string]string) *envRecord {
	return &envRecord{App: "a", Branch: "b", Annotations: ann, State: &envState{App: "a", Branch: "b", Commit: commit, Pause: p}}
}

// TestDecidePause: the latest trigger wins, at a tie the environment runs,
// a request stamped ahead of the clock waits, and Next is the next time the
// decision can change by itself.
func TestDecidePause(t *testing.T) {
	key := envKey{App: "a", Branch: "b"}
	r, clk := pauseReconciler(t, "    schedule: {hours: \"08:00-19:00\"}\n    idle_after: 2h\n    wake_on_push: true\n", at(23, 10, 0))
	awake := &pauseState{Since: at(23, 8, 0), Reason: reasonSchedule, LastActivity: at(23, 9, 0)}
	for _, c := range []struct {
		name   string
		now    time.Time
		rec    *envRecord
		commit string
		paused bool
		reason string
		next   time.Time
	}{
		{"new, in hours", at(23, 10, 0), nil, "c1", false, "schedule", at(23, 19, 0)},
		{"new, at night", at(23, 22, 0), nil, "c1", true, "schedule", at(24, 8, 0)},
		{"awake, idle deadline ahead", at(23, 10, 59), record("c1", awake, nil), "c1", false, "schedule", at(23, 11, 0)},
		{"idle for 2h", at(23, 11, 0), record("c1", awake, nil), "c1", true, "idle", at(23, 19, 0)},
		{"paused by the API in hours", at(23, 12, 0), record("c1", awake, map[string]string{AnnotationPauseRequested: "pause " + at(23, 11, 30).Format(time.RFC3339Nano)}), "c1", true, "api", at(23, 19, 0)},
		{"the API's pause ends at the next start of hours", at(24, 8, 1), record("c1", &pauseState{Paused: true, Since: at(23, 11, 30), Reason: reasonAPI, LastActivity: at(23, 9, 0)}, nil), "c1", false, "schedule", at(24, 19, 0)},
		{"woken at night runs", at(24, 2, 0), record("c1", &pauseState{Paused: true, Since: at(23, 19, 0), Reason: reasonSchedule}, map[string]string{AnnotationWakeRequested: at(24, 1, 0).Format(time.RFC3339Nano)}), "c1", false, "request", at(24, 8, 0)},
		{"a request stamped ahead waits", at(24, 2, 0), record("c1", &pauseState{Paused: true, Since: at(23, 19, 0), Reason: reasonSchedule}, map[string]string{AnnotationWakeRequested: at(24, 3, 0).Format(time.RFC3339Nano)}), "c1", true, "schedule", at(24, 8, 0)},
		{"a push wakes with wake_on_push", at(24, 2, 0), record("c1", &pauseState{Paused: true, Since: at(23, 19, 0), Reason: reasonSchedule}, nil), "c2", false, "push", at(24, 8, 0)},
		{"the same commit does not", at(24, 2, 0), record("c1", &pauseState{Paused: true, Since: at(23, 19, 0), Reason: reasonSchedule}, nil), "c1", true, "schedule", at(24, 8, 0)},
		{"a tie runs", at(23, 12, 0), record("c1", awake, map[string]string{
			AnnotationPauseRequested: "pause " + at(23, 11, 0).Format(time.RFC3339Nano), AnnotationWakeRequested: at(23, 11, 0).Format(time.RFC3339Nano)}), "c1", false, "request", at(23, 19, 0)},
		{"garbage requests are ignored", at(23, 10, 30), record("c1", awake, map[string]string{AnnotationPauseRequested: "sleep now", AnnotationWakeRequested: "soon"}), "c1", false, "schedule", at(23, 11, 0)},
	} {
		clk.SetTime(c.now)
		d := r.decidePause(key, c.rec, c.commit)
		if !d.Active || d.Paused != c.paused || d.Reason != c.reason || !d.Next.Equal(c.next) {
			t.Errorf("%s: %+v; want paused %v by %s, next %s", c.name, d, c.paused, c.reason, c.next)
		}
	}
	off, _ := pauseReconciler(t, "    overrides: [{branches: [b]}]\n", at(23, 10, 0))
	if d := off.decidePause(key, record("c1", nil, nil), "c1"); d.Active {
		t.Errorf("no pausing configured, requested or recorded: %+v", d)
	}
	if d := off.decidePause(key, record("c1", nil, map[string]string{AnnotationPauseRequested: "pause " + at(23, 9, 0).Format(time.RFC3339Nano)}), "c1"); !d.Active || !d.Paused || d.Reason != reasonAPI {
		t.Errorf("the API's pause without any configured pausing: %+v", d)
	}
}
