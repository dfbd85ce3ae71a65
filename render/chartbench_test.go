package render

import (
	"context"
	"fmt"
	"testing"
	"testing/fstest"

	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	chartvalues "helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
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

// BenchmarkRenderChart30 renders an environment whose one chart makes 30
// objects: loading the chart from the tree, values, the guarded templates,
// decoding and confining the objects. Compare with BenchmarkHelmTemplate30,
// the Helm engine alone on the chart loaded once, in the same run
// (docs/performance.md).
func BenchmarkRenderChart30(b *testing.B) {
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
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Render(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHelmTemplate30 is what helm template does for the same chart,
// without arbor: the engine on the loaded chart with coalesced values, then
// Helm's manifest sorter (hooks from objects).
func BenchmarkHelmTemplate30(b *testing.B) {
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
	render := func(c *chartv2.Chart) {
		files, err := (engine.Engine{}).RenderWithContext(context.Background(), c, top)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder); err != nil {
			b.Fatal(err)
		}
	}
	render(c)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		render(c)
	}
}
