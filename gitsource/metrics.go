package gitsource

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operation names used as the op label of the git metrics.
const (
	OpList  = "list"
	OpFetch = "fetch"
)

// Metrics holds the package's Prometheus collectors. A nil *Metrics is valid
// and records nothing, so tests and tools need not create one.
type Metrics struct {
	opDuration *prometheus.HistogramVec
	opErrors   *prometheus.CounterVec
	deliveries *prometheus.CounterVec
}

// NewMetrics creates the collectors without registering them:
//
//	arbor_git_operation_duration_seconds{app,op}  histogram, op = list|fetch
//	arbor_git_errors_total{app,op}                 counter
//
// Every ListBranches call is observed (local ones too), and every error it
// returns is counted, ErrNoBranches included. Fetch is observed only when it
// sends a request: a fetch with nothing to do records nothing.
//
//	arbor_webhook_deliveries_total{provider,result} counter (see Result*)
func NewMetrics() *Metrics {
	return &Metrics{
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "arbor_git_operation_duration_seconds",
			Help:    "Duration of git ref listings and fetches, per app.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"app", "op"}),
		opErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_git_errors_total",
			Help: "Failed git ref listings and fetches, per app.",
		}, []string{"app", "op"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_webhook_deliveries_total",
			Help: "Webhook deliveries received, by provider and result.",
		}, []string{"provider", "result"}),
	}
}

// Register registers every collector with reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.opDuration, m.opErrors, m.deliveries} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// observe records one git operation that started at start and ended with err.
func (m *Metrics) observe(app, op string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.opDuration.WithLabelValues(app, op).Observe(time.Since(start).Seconds())
	if err != nil {
		m.opErrors.WithLabelValues(app, op).Inc()
	}
}

// delivery counts one webhook delivery.
func (m *Metrics) delivery(provider, result string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(provider, result).Inc()
}
