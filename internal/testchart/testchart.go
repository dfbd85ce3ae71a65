// Package testchart holds the local Helm chart the integration tests of
// the command line and of the daemon install: a Deployment, a Service, and
// a ConfigMap from its values, one of them (preview.yaml) with a ${...}
// variable. It is for tests only.
package testchart

import (
	"embed"
	"io/fs"
	"path"
	"strings"
)

//go:embed chart
var chart embed.FS

// Files returns the chart's files by their path in a repository, each under
// dir ("chart/Chart.yaml", ... for dir "chart"); a test adds the
// .release.yaml that installs it from there (values: preview.yaml).
func Files(dir string) map[string]string {
	out := map[string]string{}
	err := fs.WalkDir(chart, "chart", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := chart.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := strings.CutPrefix(p, "chart/")
		out[path.Join(dir, rel)] = string(b)
		return nil
	})
	if err != nil {
		panic("testchart: " + err.Error()) // the files are compiled in
	}
	return out
}
