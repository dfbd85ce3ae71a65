package reconciler

import (
	"context"
	"fmt"
	"sync"

	"github.com/arbordev/arbor/chartsource"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// chartCluster is what charts render for: the cluster's version and the
// API versions it serves (.Capabilities), read from discovery once.
type chartCluster struct {
	once sync.Once
	opts render.ChartOptions
}

// chartOptions are the cluster's capabilities for chart rendering. A failed
// discovery leaves Helm's defaults (and is tried again on the next render).
func (r *Reconciler) chartOptions(ctx context.Context) render.ChartOptions {
	c := &r.charts
	c.once.Do(func() {
		disc := r.opts.Kube.Discovery()
		v, err := disc.ServerVersion()
		if err != nil {
			r.log.Warn("discovery for charts failed; they render with Helm's default capabilities", "error", err)
			c.once = sync.Once{}
			return
		}
		c.opts.KubeVersion = v.GitVersion
		_, lists, _ := disc.ServerGroupsAndResources() // a partial answer is still useful
		for _, l := range lists {
			c.opts.APIVersions = append(c.opts.APIVersions, l.GroupVersion)
			for _, res := range l.APIResources {
				c.opts.APIVersions = append(c.opts.APIVersions, l.GroupVersion+"/"+res.Kind)
			}
		}
	})
	return c.opts
}

// fetchCharts fetches the template's remote charts from the repositories
// the app's chart_repositories allows (none by default), through the
// daemon's cache. A chart served from the cache because its repository is
// down renders, with a warning in the log.
func (r *Reconciler) fetchCharts(ctx context.Context, a *appRunner, cfg *schema.Config) (map[string][]byte, error) {
	charts, _, err := r.fetchChartsWarn(ctx, a, cfg)
	return charts, err
}

// fetchChartsWarn is fetchCharts that also returns a warning for each chart
// served from the cache because its repository is down: the environment
// shows them in its status.
func (r *Reconciler) fetchChartsWarn(ctx context.Context, a *appRunner, cfg *schema.Config) (map[string][]byte, []string, error) {
	var warnings []string
	if r.opts.Charts == nil {
		return nil, nil, nil
	}
	var out map[string][]byte
	for _, ch := range chartsource.Remotes(cfg.Template) {
		c, err := r.opts.Charts.Fetch(ctx, ch.Source, a.cfg.ChartRepositories)
		if err != nil {
			return nil, nil, fmt.Errorf("chart %s: %w", ch.Name, err)
		}
		if c.Stale != nil {
			r.log.Warn("chart repository unreachable; rendering the cached chart", "app", a.cfg.Name, "chart", ch.Name, "version", c.Version, "error", c.Stale)
			warnings = append(warnings, fmt.Sprintf("chart %s: rendered from the cached %s: %v", ch.Name, c.Version, c.Stale))
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[ch.Name] = c.Archive
	}
	return out, warnings, nil
}
