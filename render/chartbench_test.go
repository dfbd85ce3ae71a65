package render

import (
	"context"
	"fmt"
	"testing"
	"testing/fstest"
	"time"

	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	chartvalues "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
)

// bench30Chart is a repository with a 30-object chart: ten components,
// each a Deployment, a Service and a ConfigMap from values, with a helper.
func bench30Chart() fstest.MapFS {
	tree := fstest.MapFS{
		"chart/Chart.yaml":             {Data: []byte("apiVersion: v2\nname: bench\nversion: 0.1.0\n")},
		"chart/templates/_helpers.tpl": {Data: []byte(`{{- define "bench.labels" -}}app.kubernetes.io/name: {{ .name }}` + "\n" + `app.kubernetes.io/instance: {{ .root.Release.Name }}{{- end }}`)},
	}
	values := "image: nginx:1.27\ncomponents:\n"
	for i := 0; i < 10; i++ {
		values += fmt.Sprintf("  c%02d: {replicas: 1, port: %d, greeting: hello-%d}\n", i, 8000+i, i)
	}
	tree["chart/values.yaml"] = &fstest.MapFile{Data: []byte(values)}
	tree["chart/templates/all.yaml"] = &fstest.MapFile{Data: []byte(`{{- range $name, $c := .Values.components }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $.Release.Name }}-{{ $name }}
  labels: {{- include "bench.labels" (dict "name" $name "root" $) | nindent 4 }}
spec:
  replicas: {{ $c.replicas }}
  selector:
    matchLabels: {{- include "bench.labels" (dict "name" $name "root" $) | nindent 6 }}
  template:
    metadata:
      labels: {{- include "bench.labels" (dict "name" $name "root" $) | nindent 8 }}
    spec:
      containers:
      - name: {{ $name }}
        image: {{ $.Values.image }}
        ports: [{containerPort: {{ $c.port }}}]
        envFrom: [{configMapRef: {name: {{ $.Release.Name }}-{{ $name }}}}]
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $.Release.Name }}-{{ $name }}
spec:
  selector: {{- include "bench.labels" (dict "name" $name "root" $) | nindent 4 }}
  ports: [{port: 80, targetPort: {{ $c.port }}}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $.Release.Name }}-{{ $name }}
data:
  GREETING: {{ $c.greeting | quote }}
{{- end }}
`)}
	return tree
}

// renderChart30 returns one render of an environment whose one chart makes
// 30 objects: loading the chart from the tree, values, the guarded
// templates, decoding and confining the objects.
func renderChart30(b *testing.B) func() {
	tree := bench30Chart()
	cfg := configFrom(b, "charts: [{name: bench, directory: chart}]\n", "")
	in := Input{Config: cfg, Tree: tree, Context: Context{App: "bench", Branch: "main", Commit: "c1"}}
	env, err := Render(in)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(env.Tasks["charts.bench"]); n != 30 {
		b.Fatalf("the chart gave %d objects, want 30", n)
	}
	return func() {
		if _, err := Render(in); err != nil {
			b.Fatal(err)
		}
	}
}

// helmTemplate30 returns what helm template does for the same chart,
// without arbor: the engine on the chart loaded once with coalesced values,
// then Helm's manifest sorter (hooks from objects).
func helmTemplate30(b *testing.B) func() {
	var read int64
	c, err := loadChartDir(bench30Chart(), "chart", ChartLimits{}.orDefaults(), &read)
	if err != nil {
		b.Fatal(err)
	}
	top, err := chartvalues.ToRenderValuesWithSchemaValidation(c, map[string]any{},
		chartcommon.ReleaseOptions{Name: "bench", Namespace: "bench-main", Revision: 1, IsInstall: true}, nil, true)
	if err != nil {
		b.Fatal(err)
	}
	render := func() {
		files, err := (engine.Engine{}).RenderWithContext(context.Background(), c, top)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder); err != nil {
			b.Fatal(err)
		}
	}
	render()
	return render
}

// BenchmarkRenderChart30 renders the 30-object chart's environment
// (docs/performance.md).
func BenchmarkRenderChart30(b *testing.B) {
	render := renderChart30(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		render()
	}
}

// BenchmarkHelmTemplate30 is helm template's own rendering of the chart.
func BenchmarkHelmTemplate30(b *testing.B) {
	render := helmTemplate30(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		render()
	}
}

// chartRatioRounds is how many renders of each kind one iteration of
// BenchmarkChart30VsHelmTemplate times.
const chartRatioRounds = 100

// BenchmarkChart30VsHelmTemplate times, in one run and alternating, arbor's
// render of the 30-object chart's environment and helm template's rendering
// of the chart, and reports both per render and their ratio.
func BenchmarkChart30VsHelmTemplate(b *testing.B) {
	arbor, helm := renderChart30(b), helmTemplate30(b)
	var ta, th time.Duration
	timeIt := func(f func()) time.Duration {
		start := time.Now()
		for range chartRatioRounds {
			f()
		}
		return time.Since(start)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ta += timeIt(arbor)
		th += timeIt(helm)
	}
	n := float64(b.N * chartRatioRounds)
	if th == 0 || ta == 0 {
		b.Fatal("a timing read 0: the ratio would mean nothing")
	}
	b.ReportMetric(ta.Seconds()*1e3/n, "arbor-ms/env")
	b.ReportMetric(th.Seconds()*1e3/n, "helm-template-ms")
	b.ReportMetric(float64(ta)/float64(th), "ratio")
	b.ReportMetric(0, "ns/op")
}
