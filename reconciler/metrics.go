package reconciler

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arbordev/arbor/apply"
)

// Metrics are the reconciler's Prometheus collectors.
type Metrics struct {
	reconcileDuration *prometheus.HistogramVec
	environments      *prometheus.GaugeVec
	problems          *prometheus.GaugeVec
	apiRequests       *prometheus.CounterVec
	listingErrors     *prometheus.CounterVec
	leader            prometheus.Gauge
	// forgeErrors and forgeRateRemaining: the app's forge (pull request
	// listings and reports).
	forgeErrors        *prometheus.CounterVec
	forgeRateRemaining *prometheus.GaugeVec
	// images and imageSeconds: built services' images (images: build or external).
	images       *prometheus.CounterVec
	imageSeconds *prometheus.HistogramVec
	// clusterUp and clusterErrors: each configured cluster's health (cluster.go).
	clusterUp     *prometheus.GaugeVec
	clusterErrors *prometheus.CounterVec
	// ownedApps: the apps this replica acts on (shard.go).
	ownedApps prometheus.Gauge
	// trafficRounds and trafficLastRead: the readings of each cluster's
	// traffic source (traffic.go).
	trafficRounds   *prometheus.CounterVec
	trafficLastRead *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them with reg:
//
//	arbor_reconcile_duration_seconds{app,result}  histogram; result = unchanged|applied|deleted|invalid|error
//	arbor_environments{app,phase}                 gauge
//	arbor_environment_problems{app,reason}        gauge: environments showing a problem of that reason (diagnose.Reasons, every one always exported)
//	arbor_api_requests_total{verb}                counter, verb from method and dryRun (see apply.Verb)
//	arbor_listing_errors_total{app}               counter: failed or empty branch listings (nothing deleted)
//	arbor_leader                                  gauge: 1 while this replica acts on at least one app
//	arbor_forge_errors_total{app}                 counter: failed pull request listings and reports (nothing stopped or undone)
//	arbor_forge_rate_limit_remaining{app}         gauge: the requests the forge said are left (-1: it sends no limit)
//	arbor_images_total{app,mode,result}           counter: built services' images; result = built|found|failed|timeout
//	arbor_image_seconds{app,mode}                 histogram: from asking for an image to having it (built, found or waited for)
//	arbor_owned_apps                              gauge: the apps this replica acts on (its share; docs/clusters.md)
//	arbor_cluster_up{cluster}                     gauge: 1 while the cluster's API server answers its health check
//	arbor_cluster_errors_total{cluster}           counter: failed health checks of the cluster
//	arbor_traffic_reads_total{cluster,result}     counter: rounds reading the ingress controller's request counters; result = ok|error
//	arbor_traffic_last_read_timestamp_seconds{cluster} gauge: when the last round succeeded
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "arbor_reconcile_duration_seconds",
			Help:    "Duration of one environment's reconcile, by app and result.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"app", "result"}),
		environments: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "arbor_environments",
			Help: "Environments by app and phase.",
		}, []string{"app", "phase"}),
		problems: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "arbor_environment_problems",
			Help: "Environments by app showing a problem of each reason (image pull, crash loop, OOMKilled, unschedulable, readiness, failed job, pending claim, container error, quota exceeded, pods refused, waiting for a slot).",
		}, []string{"app", "reason"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_api_requests_total",
			Help: "Requests sent to the Kubernetes API server, by verb.",
		}, []string{"verb"}),
		forgeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_forge_errors_total",
			Help: "Failed forge requests (pull request listings, commit statuses, comments), by app; none stops or undoes a deploy.",
		}, []string{"app"}),
		forgeRateRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "arbor_forge_rate_limit_remaining",
			Help: "Requests the app's forge said are left in its rate limit window (-1 when it sends no limit).",
		}, []string{"app"}),
		listingErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_listing_errors_total",
			Help: "Failed or empty branch listings, by app; nothing is deleted after one.",
		}, []string{"app"}),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_images_total",
			Help: "Images of built services by app, mode (buildkit|external) and result (built|found|failed|timeout).",
		}, []string{"app", "mode", "result"}),
		imageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "arbor_image_seconds",
			Help:    "Time from asking for a built service's image to having it (built, found in the registry or waited for), by app and mode.",
			Buckets: []float64{.01, .05, .1, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800},
		}, []string{"app", "mode"}),
		clusterUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "arbor_cluster_up",
			Help: "1 while the configured cluster's API server answers arbor's health check, 0 while it does not.",
		}, []string{"cluster"}),
		clusterErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_cluster_errors_total",
			Help: "Failed health checks of a configured cluster; its environments wait, nothing is deleted.",
		}, []string{"cluster"}),
		ownedApps: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "arbor_owned_apps",
			Help: "The apps this replica acts on: its share of the apps, by the replica Leases.",
		}),
		trafficRounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arbor_traffic_reads_total",
			Help: "Rounds reading the cluster's ingress controller's request counters, by result (ok, error: idle pausing then waits).",
		}, []string{"cluster", "result"}),
		trafficLastRead: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "arbor_traffic_last_read_timestamp_seconds",
			Help: "When the cluster's request counters were last read in full.",
		}, []string{"cluster"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "arbor_leader",
			Help: "1 while this replica acts on at least one app (holds its Lease and a share of the apps).",
		}),
	}
	for _, c := range []prometheus.Collector{m.reconcileDuration, m.environments, m.problems, m.apiRequests, m.listingErrors, m.leader, m.forgeErrors, m.forgeRateRemaining, m.images, m.imageSeconds, m.clusterUp, m.clusterErrors, m.ownedApps, m.trafficRounds, m.trafficLastRead} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// WrapTransport counts every request to the API server by apply.Verb; set
// it as rest.Config.WrapTransport (cfg.Wrap).
func (m *Metrics) WrapTransport(rt http.RoundTripper) http.RoundTripper {
	return apply.CountRequests(rt, func(verb string) { m.apiRequests.WithLabelValues(verb).Inc() })
}
