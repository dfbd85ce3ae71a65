package render

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"text/template"
	"time"

	chartloader "helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	kyaml "sigs.k8s.io/yaml"

	"github.com/arbordev/arbor/internal/repofs"
)

// chartTree is a repository holding one chart, helm/c, whose templates are
// the given files (name → text), plus .release.yaml naming it.
func chartTree(templates map[string]string, extra map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{
		"helm/c/Chart.yaml":  {Data: []byte("apiVersion: v2\nname: c\nversion: 0.1.0\n")},
		"helm/c/values.yaml": {Data: []byte("count: 3\n")},
	}
	for name, text := range templates {
		fsys["helm/c/templates/"+name] = &fstest.MapFile{Data: []byte(text)}
	}
	for name, text := range extra {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	return fsys
}

const chartTemplate = "charts: [{name: c, directory: helm/c}]\n"

func renderChartTree(t *testing.T, tree fstest.MapFS, ctx Context) (*Environment, error) {
	t.Helper()
	ctx.App, ctx.Branch = "shop", "main"
	return Render(Input{Config: configFrom(t, chartTemplate, ""), Tree: tree, Context: ctx})
}

// TestChartLoopStopped renders charts whose templates loop for ever (or for
// long enough): the render fails with the time limit, or the tick limit,
// instead of holding a CPU.
func TestChartLoopStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("burns CPU up to the limits")
	}
	cases := map[string]struct {
		text string
		want string
	}{
		"range over a huge number":       {"{{ range 1000000000000 }}x{{ end }}", "charts.timeout"},
		"nested ranges, nothing written": {"{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}", "charts.timeout"},
		"recursive include fan-out": {`{{ define "f" }}{{ if gt . 0 }}{{ include "f" (sub . 1) }}{{ include "f" (sub . 1) }}{{ end }}{{ end }}{{ include "f" 40 }}`,
			"charts.timeout"},
		"loop in tpl text":       {`{{ tpl "{{ range 1000000000000 }}x{{ end }}" . }}`, "charts.timeout"},
		"loop in piped tpl text": {`{{ $.Values | tpl (printf "{{ range %d }}{{ end }}" 1000000000000) }}`, "charts.timeout"},
		"until over the limit":   {"{{ range until 100000000 }}{{ end }}", "over arbor's limit"},
		"repeat over the limit":  {`{{ repeat 1000000000 "x" }}`, "over arbor's limit"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tree := chartTree(map[string]string{"loop.yaml": c.text}, nil)
			_, err := renderChartTree(t, tree, Context{Charts: ChartOptions{Limits: ChartLimits{Timeout: 300 * time.Millisecond}}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
	// The stopped renders gave their slots back: a good chart renders.
	good := chartTree(map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n"}, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := renderChartTree(t, good, Context{Charts: ChartOptions{Limits: ChartLimits{Timeout: time.Second}}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a chart render slot was never given back: %v", err)
		}
	}
}

// TestChartTicksBoundWork checks the tick limit on its own: the same nested
// loop with a generous time limit stops at maxTicks.
func TestChartTicksBoundWork(t *testing.T) {
	if testing.Short() {
		t.Skip("burns CPU up to the limits")
	}
	tree := chartTree(map[string]string{"loop.yaml": "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}"}, nil)
	_, err := renderChartTree(t, tree, Context{Charts: ChartOptions{Limits: ChartLimits{Timeout: time.Hour}}})
	if err == nil || !strings.Contains(err.Error(), "loop iterations and template calls") {
		t.Fatalf("err = %v, want the tick limit", err)
	}
}

// TestGuardTemplateKeepsMeaning checks that the rewrite with ticks renders
// the same text as the original template.
func TestGuardTemplateKeepsMeaning(t *testing.T) {
	body := `{{- define "x" }}[{{ . }}]{{ end -}}
{{- define "body" -}}
{{ range $i, $e := .Values.list }}{{ if $i }},{{ end }}{{ include "x" $e }}{{ else }}none{{ end }}
{{ with .Values.m }}{{ .a | quote }}{{ end }} {{ $v := "s" }}{{ $v = printf "%s!" $v }}{{ $v }}
{{ range 3 }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ . }}{{ end }} {{/* comment */}}` + "{{ `raw` }}" + `
{{- end }}`
	tree := chartTree(map[string]string{
		"_body.tpl": body,
		"t.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\ndata:\n  out: {{ include \"body\" . | quote }}\n",
	}, map[string]string{"helm/c/values.yaml": "list: [a, b]\nm: {a: q}\n"})
	env, err := renderChartTree(t, tree, Context{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range env.Objects {
		if o.GetName() == "t" {
			got, _, _ := unstructuredStrings(o.Object, "data")
			want := "[a],[b]\n\"q\" s!\n02 raw"
			if got["out"] != want {
				t.Fatalf("out = %q, want %q", got["out"], want)
			}
			return
		}
	}
	t.Fatal("no ConfigMap t")
}

// TestChartLinkOutRefused renders a chart on disk whose template is a
// symbolic link to a file outside the repository: refused, naming it.
func TestChartLinkOutRefused(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(outside, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	for name, text := range map[string]string{
		"helm/c/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\n",
	} {
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(repo, "helm/c/templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(repo, "helm/c/templates/cm.yaml")); err != nil {
		t.Fatal(err)
	}
	tree, err := repofs.OpenDir(repo, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Render(Input{Config: configFrom(t, chartTemplate, ""), Tree: tree, Context: Context{App: "shop", Branch: "main"}})
	if err == nil || !strings.Contains(err.Error(), "helm/c/templates/cm.yaml") || !strings.Contains(err.Error(), "outside") && !strings.Contains(err.Error(), "leaves") {
		t.Fatalf("err = %v, want the link refused, named", err)
	}
}

// TestChartConfinement: a chart rendering a cluster-scoped kind or an object
// in another namespace is refused unless the context allows it.
func TestChartConfinement(t *testing.T) {
	clusterRole := "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\nrules: []\n"
	foreign := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kube-system}\n"
	cases := []struct {
		name, text, want string
		ctx              Context
	}{
		{"cluster role", clusterRole, "ClusterRole/reader: cluster-scoped kind ClusterRole is not allowed", Context{}},
		{"foreign namespace", foreign, `ConfigMap/x: namespace "kube-system" is not the environment's namespace`, Context{}},
		{"cluster role allowed", clusterRole, "", Context{AllowClusterScoped: true}},
		{"foreign namespace allowed", foreign, "", Context{AllowForeignNamespaces: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, err := renderChartTree(t, chartTree(map[string]string{"x.yaml": c.text}, nil), c.ctx)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(env.Tasks["charts.c"]) != 1 {
					t.Fatalf("charts.c owns %v", env.Tasks["charts.c"])
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "charts.c") {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

const crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n"

// TestChartCRDs: crds/ is rendered only with include_crds, and then only
// where cluster-scoped kinds are allowed.
func TestChartCRDs(t *testing.T) {
	tree := chartTree(map[string]string{"x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}, map[string]string{"helm/c/crds/crd.yaml": crd})
	for tmpl, want := range map[string]int{
		chartTemplate: 1,
		"charts: [{name: c, directory: helm/c, include_crds: true}]\n": 2,
	} {
		env, err := Render(Input{Config: configFrom(t, tmpl, ""), Tree: tree, Context: Context{App: "shop", Branch: "main", AllowClusterScoped: true}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(env.Tasks["charts.c"]); got != want {
			t.Errorf("%s: charts.c owns %v, want %d objects", tmpl, env.Tasks["charts.c"], want)
		}
	}
}

// TestChartErrors: what a chart may not do, each with a clear error.
func TestChartErrors(t *testing.T) {
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
	cases := map[string]struct {
		tree fstest.MapFS
		tmpl string
		ctx  Context
		want string
	}{
		"dependency not vendored": {
			tree: chartTree(map[string]string{"x.yaml": cm}, map[string]string{
				"helm/c/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\ndependencies: [{name: redis, version: 1.0.0, repository: https://charts.example.com}]\n"}),
			want: "dependencies redis are not in its charts/ directory",
		},
		"values against values.schema.json": {
			tree: chartTree(map[string]string{"x.yaml": cm}, map[string]string{
				"helm/c/values.schema.json": `{"type": "object", "properties": {"count": {"type": "string"}}}`}),
			want: "values do not match values.schema.json",
		},
		"schema $ref to a URL": {
			tree: chartTree(map[string]string{"x.yaml": cm}, map[string]string{
				"helm/c/values.schema.json": `{"$ref": "https://schemas.example.com/values.json"}`}),
			want: "may not refer to other documents",
		},
		"schema $ref to a host file": {
			tree: chartTree(map[string]string{"x.yaml": cm}, map[string]string{
				"helm/c/values.schema.json": `{"$ref": "file:///etc/passwd"}`}),
			want: "may not refer to other documents",
		},
		"output over the limit": {
			tree: chartTree(map[string]string{"x.yaml": "{{ range until 5000 }}# {{ repeat 90 \"x\" }}\n{{ end }}" + cm}, nil),
			ctx:  Context{Charts: ChartOptions{Limits: ChartLimits{MaxOutputBytes: 100000}}},
			want: "rendered manifests pass",
		},
		"file over the limit": {
			tree: chartTree(map[string]string{"x.yaml": cm + "# " + strings.Repeat("x", 2000) + "\n"}, nil),
			ctx:  Context{Charts: ChartOptions{Limits: ChartLimits{MaxFileBytes: 1000}}},
			want: "helm/c/templates/x.yaml",
		},
		"unknown variable in values": {
			tree: chartTree(map[string]string{"x.yaml": cm}, map[string]string{"helm/c/preview.yaml": "a: ${NOPE}\n"}),
			tmpl: "charts: [{name: c, directory: helm/c, values: preview.yaml}]\n",
			want: "values[0] helm/c/preview.yaml: a: unknown variable ${NOPE}",
		},
		"template error": {
			tree: chartTree(map[string]string{"x.yaml": "{{ fail \"nope\" }}"}, nil),
			want: "nope",
		},
		"kube version": {
			tree: chartTree(map[string]string{"x.yaml": cm}, map[string]string{
				"helm/c/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\nkubeVersion: '>= 1.99.0'\n"}),
			ctx:  Context{Charts: ChartOptions{KubeVersion: "v1.37.2"}},
			want: "the chart requires Kubernetes >= 1.99.0",
		},
		"alias bomb in the output": {
			tree: chartTree(map[string]string{"x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n" +
				"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
				"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n" +
				"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"}, nil),
			want: "too large",
		},
		"values file outside the repository": {
			tree: chartTree(map[string]string{"x.yaml": cm}, nil),
			tmpl: "charts: [{name: c, directory: helm/c, values: ../../../etc/passwd}]\n",
			want: "values[0] ../etc/passwd: path leaves the repository",
		},
		"include_crds refused": {
			tree: chartTree(map[string]string{"x.yaml": cm}, map[string]string{"helm/c/crds/crd.yaml": crd}),
			tmpl: "charts: [{name: c, directory: helm/c, include_crds: true}]\n",
			want: "crd.yaml: CustomResourceDefinition/widgets.example.com: cluster-scoped kind CustomResourceDefinition is not allowed",
		},
		"hostname naming no chart Service": {
			tree: chartTree(map[string]string{"x.yaml": cm}, nil),
			tmpl: chartTemplate + "hostnames: [{search: 'search.example.com'}]\n",
			want: `hostnames.search: no service named "search", and no chart renders a Service of that name`,
		},
		"name_template not a release name": {
			tree: chartTree(map[string]string{"x.yaml": cm}, nil),
			tmpl: "charts: [{name: c, directory: helm/c, name_template: Bad_Name}]\n",
			want: `release name "Bad_Name" must be lower-case`,
		},
		"remote chart not fetched": {
			tree: chartTree(nil, nil),
			tmpl: "charts: [{name: r, repo_url: https://charts.example.com, install: x/r, version: 1.0.0}]\n",
			want: "charts.r: repository chart https://charts.example.com r version 1.0.0 was not fetched",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tmpl := c.tmpl
			if tmpl == "" {
				tmpl = chartTemplate
			}
			c.ctx.App, c.ctx.Branch = "shop", "main"
			_, err := Render(Input{Config: configFrom(t, tmpl, ""), Tree: c.tree, Context: c.ctx})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestGuardTemplateSameOutput executes templates as written and as
// rewritten with ticks, and compares the outputs.
func TestGuardTemplateSameOutput(t *testing.T) {
	texts := []string{
		"plain text, no actions",
		`{{ range $i, $e := .l }}{{ $i }}={{ $e }};{{ else }}empty{{ end }}`,
		`{{- range .l -}} {{ . }} {{- end -}}|{{ range .none }}x{{ else }}none{{ end }}`,
		`{{ define "a" }}<{{ . }}>{{ end }}{{ template "a" "z" }}{{ block "b" . }}B{{ .m.k }}{{ end }}`,
		`{{ if .m }}{{ with .m.k }}{{ . | printf "%q" }}{{ end }}{{ else if .l }}l{{ else }}n{{ end }}`,
		`{{ range 4 }}{{ if eq . 2 }}{{ break }}{{ end }}{{ . }}{{ end }}{{ $x := 1 }}{{ $x = 2 }}{{ $x }}`,
		"{{ `raw {{ not an action }}` }} {{ \"q\\\"s\" }} {{ 1.5e3 }} {{ 'c' }} {{ printf \"%v\" nil }}",
		`{{ (index .l 1) }} {{ .m.k | len }} {{ and 1 0 }} {{ or 0 "x" }}`,
		"x{ {{- 1 -}} }y{ {{- if true }}{ {{- end }}",
		`[{{ .m.missing }}] [{{ .nothing }}] [{{ .m }}] [{{ .l }}] [{{ 3.5 }}] [{{ true }}] [{{ .ptr }}] [{{ .err }}]`,
	}
	five := 5
	data := map[string]any{"l": []any{"a", "b"}, "m": map[string]any{"k": "v"}, "ptr": &five, "err": errors.New("e")}
	g := &chartGuard{deadline: time.Now().Add(time.Hour), limit: time.Hour, maxOut: 1 << 30}
	funcs := g.funcs()
	for _, text := range texts {
		run := func(src string) string {
			tpl, err := template.New("t").Funcs(funcs).Parse(src)
			if err != nil {
				t.Fatalf("%q: %v", src, err)
			}
			var b strings.Builder
			if err := tpl.Execute(&b, data); err != nil {
				t.Fatalf("%q: %v", src, err)
			}
			return b.String()
		}
		guarded := guardTemplate("t", text)
		if want, got := run(text), run(guarded); got != want {
			t.Errorf("%q\nrewritten %q\ngives %q, want %q", text, guarded, got, want)
		}
		if strings.Contains(text, "range") && !strings.Contains(guarded, guardTickFunc) {
			t.Errorf("%q: no tick in the rewrite %q", text, guarded)
		}
	}
}

// TestChartRemoteForms renders the chart of testdata/golden/chart-local
// packaged by the Helm SDK, as an HTTP repository chart and as an OCI chart
// (both given as fetched archives): the objects and hooks are those of the
// chart rendered from the repository.
func TestChartRemoteForms(t *testing.T) {
	dir := filepath.Join("testdata", "golden", "chart-local")
	c, err := chartloader.LoadDir(filepath.Join(dir, "helm", "web"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := chartutil.Save(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	archive, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	local := loadCase(t, dir)
	want, err := Render(local)
	if err != nil {
		t.Fatal(err)
	}
	for _, source := range []string{
		"repo_url: https://charts.example.com, add: acme, install: acme/web, version: 0.1.0",
		"install: oci://registry.example.com/charts/web, version: 0.1.0",
	} {
		t.Run(source, func(t *testing.T) {
			in := loadCase(t, dir)
			ch := &in.Config.Template.Charts[0]
			tmpl := configFrom(t, "charts: [{name: web, "+source+"}]", "")
			remote := tmpl.Template.Charts[0]
			remote.Values, remote.Directory = ch.ValuesPaths(), ""
			*ch = remote
			in.RemoteCharts = map[string][]byte{"web": archive}
			got, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := objectSummary(t, want), objectSummary(t, got); a != b {
				t.Errorf("objects differ from the local chart's:\n%s", lineDiff(a, b))
			}
			if len(got.Hooks) != 3 || got.Hooks[0].Phase != HookBefore || got.Hooks[0].Object.GetName() != "demo-migrate" {
				t.Errorf("hooks = %+v", got.Hooks)
			}
			for phase, name := range map[HookPhase]string{HookBefore: "demo-migrate", HookAfter: "demo-installed", HookTeardown: "demo-goodbye"} {
				if hs := got.HooksFor("charts.web", phase); len(hs) != 1 || hs[0].Object.GetName() != name {
					t.Errorf("HooksFor(charts.web, %s) = %+v, want %s", phase, hs, name)
				}
			}
		})
	}
}

// objectSummary is the objects of an environment as YAML, without the
// namespace's config-hash annotation (the template differs).
func objectSummary(t *testing.T, env *Environment) string {
	t.Helper()
	var b strings.Builder
	for _, o := range env.Objects {
		if o.GetKind() == "Namespace" {
			continue
		}
		y, err := kyaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(y)
		b.WriteString("---\n")
	}
	return b.String()
}

// TestChartReleaseName: .Release.Name is name_template, else
// helm.name_template, else the app's name, cut to Helm's 53 characters.
func TestChartReleaseName(t *testing.T) {
	tree := chartTree(map[string]string{"x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\n"}, nil)
	long := "an--app-" + strings.Repeat("x", 55)
	for tmpl, want := range map[string]string{
		chartTemplate: cutName(long, 53),
		"helm: {name_template: acme}\n" + chartTemplate:                                             "acme",
		"helm: {name_template: acme}\ncharts: [{name: c, directory: helm/c, name_template: own}]\n": "own",
	} {
		env, err := Render(Input{Config: configFrom(t, tmpl, ""), Tree: tree, Context: Context{App: long, AppFixed: true, Branch: "main"}})
		if err != nil {
			t.Fatalf("%s: %v", tmpl, err)
		}
		if refs := env.Tasks["charts.c"]; len(refs) != 1 || refs[0].Name != want {
			t.Errorf("%s: charts.c owns %v, want ConfigMap %s", tmpl, refs, want)
		}
	}
}

// TestChartOutputCountedWhileRendering: output is counted as the templates
// run, so a loop printing a large value stops at the limit instead of
// filling memory first.
func TestChartOutputCountedWhileRendering(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	for name, text := range map[string]string{
		"printed values": "{{ range until 2000 }}{{ $.Values.big }}{{ end }}",
		"literal text":   "{{ range until 2000 }}" + big + "{{ end }}",
		"included text":  `{{ define "b" }}{{ .Values.big }}{{ end }}{{ range until 2000 }}{{ include "b" $ }}{{ end }}`,
	} {
		t.Run(name, func(t *testing.T) {
			tree := chartTree(map[string]string{"x.yaml": text}, map[string]string{"helm/c/values.yaml": "big: " + big + "\n"})
			_, err := renderChartTree(t, tree, Context{Charts: ChartOptions{Limits: ChartLimits{MaxOutputBytes: 1 << 20}}})
			if err == nil || !strings.Contains(err.Error(), "template execution stopped") || !strings.Contains(err.Error(), "charts.max_output_size") {
				t.Fatalf("err = %v, want the guard to stop the output", err)
			}
		})
	}
}

// TestChartRandomStable: with the daemon's key, a chart's random values are
// the same at every render of the environment (no write on resync, no
// password lost), and differ across keys and environments; without a key
// they are random, as in Helm.
func TestChartRandomStable(t *testing.T) {
	tree := chartTree(map[string]string{"s.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: s}
data:
  an: {{ randAlphaNum 24 | quote }}
  al: {{ randAlpha 8 | quote }}
  nu: {{ randNumeric 8 | quote }}
  as: {{ randAscii 8 | quote }}
  by: {{ randBytes 12 | quote }}
  id: {{ uuidv4 | quote }}
`}, nil)
	values := func(key, branch string) map[string]string {
		t.Helper()
		env, err := Render(Input{Config: configFrom(t, chartTemplate, ""), Tree: tree, Context: Context{App: "shop", Branch: branch, HashKey: []byte(key)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range env.Objects {
			if o.GetName() == "s" {
				d, _, _ := unstructuredStrings(o.Object, "data")
				return d
			}
		}
		t.Fatal("no ConfigMap s")
		return nil
	}
	a, again := values("k1", "main"), values("k1", "main")
	if fmt.Sprint(a) != fmt.Sprint(again) {
		t.Errorf("two renders with the same key differ:\n%v\n%v", a, again)
	}
	if b := values("k2", "main"); b["an"] == a["an"] {
		t.Errorf("another key gives the same value %q", a["an"])
	}
	if b := values("k1", "other"); b["an"] == a["an"] {
		t.Errorf("another environment gives the same value %q", a["an"])
	}
	if x, y := values("", "main"), values("", "main"); x["an"] == y["an"] {
		t.Errorf("without a key two renders give the same value %q", x["an"])
	}
	checks := map[string]*regexp.Regexp{
		"an": regexp.MustCompile(`^[A-Za-z0-9]{24}$`), "al": regexp.MustCompile(`^[A-Za-z]{8}$`),
		"nu": regexp.MustCompile(`^[0-9]{8}$`), "as": regexp.MustCompile(`^[ -~]{8}$`),
		"by": regexp.MustCompile(`^[A-Za-z0-9+/]{16}$`),
		"id": regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`),
	}
	for k, re := range checks {
		if !re.MatchString(a[k]) {
			t.Errorf("%s = %q, want %s", k, a[k], re)
		}
	}
}

// TestChartTplGuarded: tpl still renders text that uses the chart's values
// and defines, in both call forms, with its text rewritten by the guard.
func TestChartTplGuarded(t *testing.T) {
	tree := chartTree(map[string]string{
		"_x.tpl": `{{ define "x" }}<{{ .Values.count }}>{{ end }}`,
		"t.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\ndata:\n" +
			"  a: {{ tpl .Values.text . | quote }}\n" +
			"  b: {{ . | tpl \"{{ range until 2 }}{{ include \\\"x\\\" $ }}{{ end }}\" | quote }}\n",
	}, map[string]string{"helm/c/values.yaml": "count: 3\ntext: '{{ .Values.count }}-{{ include \"x\" . }}'\n"})
	env, err := renderChartTree(t, tree, Context{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range env.Objects {
		if o.GetName() == "t" {
			d, _, _ := unstructuredStrings(o.Object, "data")
			if d["a"] != "3-<3>" || d["b"] != "<3><3>" {
				t.Fatalf("data = %v, want a: 3-<3>, b: <3><3>", d)
			}
			return
		}
	}
	t.Fatal("no ConfigMap t")
}
