package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/arbordev/arbor/chartsource"
	"github.com/arbordev/arbor/schema"
)

// defaultChartCache is where arbor validate --fetch-charts keeps charts.
func defaultChartCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "arbor", "charts")
}

// fetchCharts fetches the remote charts of cfg for arbor validate
// --fetch-charts. The user asked for it on the command line, so every
// repository the template names is allowed here; the daemon allows only
// those of its config. A chart that cannot be fetched is an error finding
// at its entry; one served from the cache because its repository is down is
// a warning.
func fetchCharts(ctx context.Context, cfg *schema.Config, cache string) (map[string][]byte, schema.Findings) {
	f := &chartsource.Fetcher{Dir: cache}
	out := map[string][]byte{}
	var findings schema.Findings
	for _, ch := range chartsource.Remotes(cfg.Template) {
		src := ch.Source
		field := fmt.Sprintf("charts[%d]", ch.Index)
		c, err := f.Fetch(ctx, src, []string{src.Repo})
		if err != nil {
			findings = append(findings, schema.Finding{Position: cfg.Position(field), Field: field, Severity: schema.SeverityError, Message: fmt.Sprintf("fetching the chart: %v", err)})
			continue
		}
		if c.Stale != nil {
			findings = append(findings, schema.Finding{Position: cfg.Position(field), Field: field, Severity: schema.SeverityWarning, Message: fmt.Sprintf("checked with the cached chart %s %s: %v", src.Chart, c.Version, c.Stale)})
		}
		out[ch.Name] = c.Archive
	}
	return out, findings
}
