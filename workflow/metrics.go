package workflow

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the workflow collectors:
//
//	arbor_workflow_runs_total{app,stage,result}                counter; result = succeeded|succeeded-with-warnings|failed
//	arbor_workflow_duration_seconds{app,stage}                 histogram of whole runs
//	arbor_workflow_task_duration_seconds{app,stage,task,result} histogram; result = succeeded|failed
//
// A nil *Metrics records nothing.
type Metrics struct {
	runs         *prometheus.CounterVec
	runDuration  *prometheus.HistogramVec
	taskDuration *prometheus.HistogramVec
}

var durationBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_workflow_runs_total",
			Help: "Workflow runs by app, stage and result.",
		}, []string{"app", "stage", "result"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "arbor_workflow_duration_seconds",
			Help:    "Duration of whole workflow runs, by app and stage.",
			Buckets: durationBuckets,
		}, []string{"app", "stage"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "arbor_workflow_task_duration_seconds",
			Help:    "Duration of workflow tasks (service rollouts, job runs, environment removals), by app, stage, task and result.",
			Buckets: durationBuckets,
		}, []string{"app", "stage", "task", "result"}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.runDuration, m.taskDuration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observeRun(app, stage string, outcome Outcome, d time.Duration) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(app, stage, string(outcome)).Inc()
	m.runDuration.WithLabelValues(app, stage).Observe(d.Seconds())
}

func (m *Metrics) observeTask(app, stage, task string, state TaskState, d time.Duration) {
	if m == nil {
		return
	}
	m.taskDuration.WithLabelValues(app, stage, task, string(state)).Observe(d.Seconds())
}
