package workflow

import (
	"slices"
	"sync"
	"time"

	"github.com/arbordev/arbor/state"
)

// TaskState is where one task of a run stands.
type TaskState string

// The states of a task.
const (
	TaskPending   TaskState = "pending"
	TaskRunning   TaskState = "running"
	TaskSucceeded TaskState = "succeeded"
	TaskFailed    TaskState = "failed"
	TaskSkipped   TaskState = "skipped" // not run: the workflow halted or the environment was removed first
)

// Outcome is how a run ended; the record (package state) owns its values.
type Outcome = state.Outcome

// Progress is a run's state, reported after every change. It is a copy: the
// receiver may keep it.
type Progress struct {
	App      string    `json:"app"`
	Stage    string    `json:"stage"`
	Step     string    `json:"step,omitempty"` // the step running now ("" before the first and after the last)
	Outcome  Outcome   `json:"outcome"`
	Tasks    []Task    `json:"tasks"`
	Warnings []string  `json:"warnings,omitempty"` // failures of tasks without halt_on_error
	Error    string    `json:"error,omitempty"`    // why the run failed
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

// Task is one task of a run.
type Task struct {
	Name     string    `json:"name"`          // services.web, jobs.migrate, release.remove_environment
	App      string    `json:"app,omitempty"` // the imported app whose task this is; "" for the environment's own
	Step     string    `json:"step"`
	State    TaskState `json:"state"`
	Reason   string    `json:"reason,omitempty"` // why it failed or was skipped
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// Failed returns the tasks that failed.
func (p *Progress) Failed() []Task {
	var out []Task
	for _, t := range p.Tasks {
		if t.State == TaskFailed {
			out = append(out, t)
		}
	}
	return out
}

// Task returns the task named name of app ("" for the environment's own), and whether it is in the run.
func (p *Progress) Task(app, name string) (Task, bool) {
	for _, t := range p.Tasks {
		if t.App == app && t.Name == name {
			return t, true
		}
	}
	return Task{}, false
}

// tracker holds a run's progress and reports every change, in order.
type tracker struct {
	mu     sync.Mutex
	p      Progress
	report func(Progress)
}

// update changes the progress under the lock and reports a copy. The report
// callback runs under the lock too, so reports arrive in the order of the
// changes; it must not block for long.
func (t *tracker) update(change func(p *Progress)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	change(&t.p)
	if t.report != nil {
		t.report(t.p.clone())
	}
}

func (t *tracker) snapshot() Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.p.clone()
}

// setTask changes task i's state.
func (t *tracker) setTask(i int, state TaskState, reason string) {
	now := time.Now()
	t.update(func(p *Progress) {
		tk := &p.Tasks[i]
		tk.State, tk.Reason = state, reason
		switch state {
		case TaskRunning:
			tk.Started = now
		case TaskSucceeded, TaskFailed:
			tk.Finished = now
		}
	})
}

func (p Progress) clone() Progress {
	p.Tasks = slices.Clone(p.Tasks)
	p.Warnings = slices.Clone(p.Warnings)
	return p
}
