package reconciler

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/traffic"
)

// Requests to running environments (docs/pausing.md). With a traffic
// source configured for its cluster, a Reconciler reads the ingress
// controller's request counters every interval, once for all its
// environments: a namespace whose counter moved since the last reading
// had a request in that round, and idle_after counts from it. What it
// learns stays in memory, and a reading that fails — or the time before
// the first one — counts as a request for every environment: idle
// pausing never acts on a reading it does not have.

// trafficConcurrency bounds the endpoints scraped at once.
const trafficConcurrency = 4

// trafficState is what the traffic readings say of the environments.
type trafficState struct {
	mu sync.Mutex
	// prev is each endpoint's last good reading, by namespace.
	prev map[string]traffic.Counts
	// seen is, by namespace, the last round its counter moved in.
	seen map[string]time.Time
	// unknown is the last time the requests could not be read (a failed
	// round, or the loop's start): every environment counts as busy then.
	unknown time.Time
}

// activeAt is when key's namespace last counted as busy: its last request
// seen, or the last time nothing could be seen. Zero without a source.
func (t *trafficState) activeAt(namespace string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := t.seen[namespace]
	if t.unknown.After(at) {
		at = t.unknown
	}
	return at
}

// lastRequest is the last round in which namespace's counter moved.
func (t *trafficState) lastRequest(namespace string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen[namespace]
}

// markUnknown records that the requests up to now could not be read.
func (t *trafficState) markUnknown(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unknown = now
}

// observe takes one round's readings at now: a namespace whose counter
// differs from the endpoint's previous reading — or, on an endpoint read
// for the first time, is above zero — had a request. An endpoint that is
// gone is forgotten.
func (t *trafficState) observe(now time.Time, readings map[string]traffic.Counts) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[string]time.Time{}
	}
	for ep, counts := range readings {
		old := t.prev[ep] // nil for an endpoint read for the first time
		for ns, v := range counts {
			if was, ok := old[ns]; v > 0 && (!ok || was != v) {
				t.seen[ns] = now
			}
		}
	}
	t.prev = readings
}

// forget drops what is known of namespaces no longer in use.
func (t *trafficState) forget(keep map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for ns := range t.seen {
		if !keep[ns] {
			delete(t.seen, ns)
		}
	}
}

// trafficLoop reads the cluster's traffic source every interval while the
// Reconciler runs.
func (r *Reconciler) trafficLoop(ctx context.Context) {
	src := r.opts.Config.Clusters[r.cluster].Traffic
	if !src.Enabled() || !slices.ContainsFunc(r.order, func(n string) bool { return idles(r.apps[n].cfg.Pause) }) {
		return // nothing to read for
	}
	r.traffic.markUnknown(r.clock.Now())
	scraper := traffic.Scraper{Client: &http.Client{}, Timeout: src.Timeout.Duration, MaxBytes: src.MaxBytes.Bytes}
	for {
		r.trafficRound(ctx, src, scraper)
		select {
		case <-ctx.Done():
			return
		case <-r.clock.After(src.Interval.Duration):
		}
	}
}

// idles reports whether any branch of an app with p pauses when idle.
func idles(p config.Pause) bool {
	return p.IdleAfter.Duration > 0 || slices.ContainsFunc(p.Overrides, func(o config.PauseOverride) bool { return o.IdleAfter.Duration > 0 })
}

// trafficRound reads every endpoint of src once.
func (r *Reconciler) trafficRound(ctx context.Context, src config.Traffic, scraper traffic.Scraper) {
	now := r.clock.Now()
	targets, err := r.trafficTargets(ctx, src)
	namespaces := r.envNamespaces()
	readings := map[string]traffic.Counts{}
	if err == nil {
		readings, err = r.scrapeAll(ctx, src, scraper, targets, namespaces)
	}
	result := "ok"
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		result = "error"
		r.traffic.markUnknown(now) // never idle on a reading arbor does not have
		r.log.Warn("could not read the requests to environments; idle pausing waits", "cluster", r.cluster, "error", err)
	} else {
		r.traffic.observe(now, readings)
		r.opts.Metrics.trafficLastRead.WithLabelValues(r.cluster).Set(float64(now.Unix()))
	}
	keep := make(map[string]bool, len(namespaces))
	for _, ns := range namespaces {
		keep[ns] = true
	}
	r.traffic.forget(keep)
	r.opts.Metrics.trafficRounds.WithLabelValues(r.cluster, result).Inc()
}

// trafficTargets are the URLs to read: the configured ones and the ready
// endpoints of the controller's metrics Service.
func (r *Reconciler) trafficTargets(ctx context.Context, src config.Traffic) ([]string, error) {
	targets := append([]string(nil), src.URLs...)
	if src.Service == "" {
		return targets, nil
	}
	ns, name := src.ServiceRef()
	eps, err := traffic.Endpoints(ctx, r.opts.Kube, ns, name, src.Port, src.Path, config.MaxTrafficTargets-len(targets))
	return append(targets, eps...), err
}

// scrapeAll reads every target; one failure fails the round (its
// namespaces' requests are then unknown).
func (r *Reconciler) scrapeAll(ctx context.Context, src config.Traffic, s traffic.Scraper, targets, namespaces []string) (map[string]traffic.Counts, error) {
	c := traffic.Counter{Metric: src.Metric, Label: src.Label, Prefix: src.Match == config.MatchPrefix}
	out := make([]traffic.Counts, len(targets))
	var g errgroup.Group
	g.SetLimit(trafficConcurrency)
	for i, url := range targets {
		g.Go(func() error {
			counts, err := s.Scrape(ctx, url, c, namespaces)
			out[i] = counts
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	m := make(map[string]traffic.Counts, len(targets))
	for i, url := range targets {
		m[url] = out[i]
	}
	return m, nil
}

// envNamespaces are the namespaces of the environments in the cache.
func (r *Reconciler) envNamespaces() []string {
	var out []string
	for _, name := range r.order {
		for _, rec := range r.cache.envs(name) {
			out = append(out, rec.Namespace)
		}
	}
	return out
}
