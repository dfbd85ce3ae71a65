package render

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	chartvalues "helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"

	"github.com/arbordev/arbor/internal/repofs"
	"github.com/arbordev/arbor/schema"
)

// Defaults of ChartLimits (docs/charts.md, docs/security.md).
const (
	DefaultChartMaxFileBytes   = 4 << 20
	DefaultChartMaxTotalBytes  = 32 << 20
	DefaultChartMaxOutputBytes = 16 << 20
	DefaultChartTimeout        = 30 * time.Second
	// maxChartFiles bounds the files of one chart, its dependencies included.
	maxChartFiles = 5000
	// chartRenderSlots bounds the charts rendered at once in the process. A
	// render that overruns its time limit keeps its slot until its goroutine
	// ends (the guard in chartguard.go makes it end at its next tick).
	chartRenderSlots = 2
	// guardOutputFactor is how much output the running count allows, in
	// multiples of MaxOutputBytes (chartguard.go).
	guardOutputFactor = 4
)

// ChartLimits bound what rendering one chart may read, produce and take.
// Zero fields take the defaults.
type ChartLimits struct {
	MaxFileBytes   int64         // one file of the chart or one values file
	MaxTotalBytes  int64         // the chart's files, archives decompressed, and its values files
	MaxOutputBytes int64         // the rendered manifests
	Timeout        time.Duration // one chart's template execution, waiting for a slot included
}

func (l ChartLimits) orDefaults() ChartLimits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultChartMaxFileBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultChartMaxTotalBytes
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = DefaultChartMaxOutputBytes
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultChartTimeout
	}
	return l
}

// ChartOptions are how charts are rendered: what the cluster is, as `helm
// template --kube-version --api-versions` takes it (the caller reads it from
// the cluster; render does no I/O), and the limits.
type ChartOptions struct {
	// KubeVersion is the cluster's version (v1.37.2); "" is Helm's default.
	KubeVersion string
	// APIVersions are the group/versions (and group/version/Kind) the
	// cluster serves, for .Capabilities.APIVersions.Has.
	APIVersions []string
	Limits      ChartLimits
	// SkipRemote leaves out remote charts the caller did not fetch, with a
	// warning (arbor validate without --fetch-charts). Otherwise a remote
	// chart missing from RemoteCharts is an error.
	SkipRemote bool
}

// HookPhase is where a Helm hook runs in arbor's workflow (docs/charts.md).
type HookPhase string

// The hook phases.
const (
	HookBefore   HookPhase = "before"   // pre-install, pre-upgrade: before the chart's objects
	HookAfter    HookPhase = "after"    // post-install, post-upgrade: after them, once ready
	HookTeardown HookPhase = "teardown" // pre-delete, post-delete: in teardown
)

// Hook is one Helm hook object of a chart task, confined and labelled like
// the chart's other objects but not among Environment.Objects: the workflow
// applies it at its phase, in Weight order, and deletes it as its
// DeletePolicies say.
type Hook struct {
	Task           string // charts.NAME
	Phase          HookPhase
	Events         []string // Helm's events, as written (pre-install, pre-upgrade, ...)
	Weight         int
	DeletePolicies []string
	Object         *unstructured.Unstructured
}

// chartSlots holds the charts being rendered now.
var chartSlots = make(chan struct{}, chartRenderSlots)

// chartTaskPrefix starts the workflow task of a chart.
const chartTaskPrefix = "charts."

// renderCharts renders every chart of every app (docs/charts.md) and adds
// its objects, confined to the environment, to the chart's task.
func (r *renderer) renderCharts() error {
	lim := r.in.Context.Charts.Limits.orDefaults()
	var read int64 // bytes read for charts in this render
	for ai, a := range r.apps {
		remote := r.in.RemoteCharts
		if ai > 0 {
			remote = r.in.Imports[ai-1].RemoteCharts
		}
		for i := range a.t.Charts {
			ch := &a.t.Charts[i]
			field := fmt.Sprintf("charts.%s", ch.Name)
			if err := r.renderChart(a, ch, remote, lim, &read); err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
		}
	}
	return nil
}

// renderChart renders one chart entry.
func (r *renderer) renderChart(a *app, ch *schema.Chart, remote map[string][]byte, lim ChartLimits, read *int64) error {
	if ch.Name == "" {
		return errors.New("name is required")
	}
	src, err := ch.Source()
	if err != nil {
		return err
	}
	c, err := r.loadChart(a, ch, src, remote, lim, read)
	if err != nil || c == nil {
		return err
	}
	vals, err := r.chartValues(a, ch, lim, read)
	if err != nil {
		return err
	}
	rendered, crds, err := r.executeChart(a, ch, c, vals, lim)
	if err != nil {
		return err
	}
	a.charts = append(a.charts, ch.Name)
	return r.addChartObjects(a, ch, rendered, crds)
}

// loadChart loads a chart from the repository or from the archive the
// caller fetched. It returns nil, nil for a chart that is skipped.
func (r *renderer) loadChart(a *app, ch *schema.Chart, src schema.ChartSource, remote map[string][]byte, lim ChartLimits, read *int64) (*chartv2.Chart, error) {
	switch src.Kind {
	case schema.ChartGit:
		r.warn(fmt.Sprintf("charts.%s: charts from a git repository (%s) are not supported; the chart is skipped", ch.Name, src.Repo))
		return nil, nil
	case schema.ChartLocal:
		if a.tree == nil {
			return nil, errors.New("no repository tree to load the chart from")
		}
		dir, err := repoDir(ch.Directory)
		if err != nil {
			return nil, fmt.Errorf("directory %q: %w", ch.Directory, err)
		}
		return loadChartDir(a.tree, dir, lim, read)
	}
	data, ok := remote[ch.Name]
	if !ok {
		if r.in.Context.Charts.SkipRemote {
			r.warn(fmt.Sprintf("charts.%s: %s %s was not fetched (checked by reference only); its objects are not rendered", ch.Name, src.Repo, src.Chart))
			return nil, nil
		}
		return nil, fmt.Errorf("%s chart %s %s %s was not fetched", kindWord(src.Kind), src.Repo, src.Chart, versionWord(src.Version))
	}
	return loadChartArchive(data, lim, read)
}

func kindWord(k schema.ChartSourceKind) string {
	if k == schema.ChartOCI {
		return "OCI"
	}
	return "repository"
}

func versionWord(v string) string {
	if v == "" {
		return "(newest version)"
	}
	return "version " + v
}

func (r *renderer) warn(w string) {
	r.env.Warnings = append(r.env.Warnings, w)
}

// chartValues reads the entry's values files, in order, each expanded with
// the environment's variables, later files winning as with helm -f.
func (r *renderer) chartValues(a *app, ch *schema.Chart, lim ChartLimits, read *int64) (map[string]any, error) {
	out := map[string]any{}
	if len(ch.Values) == 0 {
		return out, nil
	}
	vars, err := r.computeEnv(a, []string{ch.Name}, nil, nil)
	if err != nil {
		return nil, err
	}
	lookup := func(name string) (string, bool) {
		if p, ok := strings.CutPrefix(name, "parameters."); ok {
			v, ok := a.params[p]
			return v, ok
		}
		v, ok := vars[name]
		return v.value, ok
	}
	for i, p := range ch.ValuesPaths() {
		field := fmt.Sprintf("values[%d] %s", i, p)
		clean, err := repoDir(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if a.tree == nil {
			return nil, fmt.Errorf("%s: no repository tree to read it from", field)
		}
		data, err := repofs.ReadFile(a.tree, clean, lim.MaxFileBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if err := chargeRead(read, int64(len(data)), lim); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		var budget schema.AliasBudget
		if err := budget.CheckYAML(clean, data); err != nil {
			return nil, err
		}
		vals, err := chartcommon.ReadValues(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		expanded, err := expandValues(vals.AsMap(), lookup)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		mergeValues(out, expanded.(map[string]any))
	}
	return out, nil
}

// expandValues expands ${...} in every string of a values tree. Variables
// are expanded in the parsed values, never in the YAML text, so a value
// cannot add keys or change the document's structure. An unknown variable
// is an error; secret values never appear in errors.
func expandValues(v any, lookup lookupFunc) (any, error) {
	switch x := v.(type) {
	case string:
		// expandVars's errors quote the string from git, never a value.
		return expandVars(x, lookup, true)
	case map[string]any:
		for k, e := range x {
			out, err := expandValues(e, lookup)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			x[k] = out
		}
		return x, nil
	case []any:
		for i, e := range x {
			out, err := expandValues(e, lookup)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			x[i] = out
		}
		return x, nil
	}
	return v, nil
}

// mergeValues merges src into dst: maps deeply, anything else replaced.
func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// executeChart renders c as helm template does: dependencies resolved from
// charts/, values coalesced and checked against values.schema.json, the
// templates executed under the guard. It returns the rendered files
// (NOTES.txt dropped) and, with include_crds, the CRD files.
func (r *renderer) executeChart(a *app, ch *schema.Chart, c *chartv2.Chart, vals map[string]any, lim ChartLimits) (map[string]string, []string, error) {
	if err := missingDependencies(c); err != nil {
		return nil, nil, err
	}
	caps, err := r.capabilities()
	if err != nil {
		return nil, nil, err
	}
	if kv := c.Metadata.KubeVersion; kv != "" && !chartutil.IsCompatibleRange(kv, caps.KubeVersion.String()) {
		return nil, nil, fmt.Errorf("the chart requires Kubernetes %s; the cluster is %s", kv, caps.KubeVersion.String())
	}
	name, err := r.releaseName(a, ch)
	if err != nil {
		return nil, nil, err
	}
	if err := chartutil.ProcessDependencies(c, vals); err != nil {
		return nil, nil, fmt.Errorf("dependencies: %w", err)
	}
	opts := chartcommon.ReleaseOptions{Name: name, Namespace: r.env.Namespace, Revision: 1, IsInstall: true}
	// Helm's own schema check would load $ref from http(s) and file URLs;
	// arbor checks values.schema.json itself, with no loader (chartschema.go).
	top, err := chartvalues.ToRenderValuesWithSchemaValidation(c, vals, opts, caps, true)
	if err != nil {
		return nil, nil, fmt.Errorf("values: %w", err)
	}
	if err := checkValuesSchema(c, top["Values"]); err != nil {
		return nil, nil, err
	}
	files, err := runEngine(c, top, lim, chartRandom(r.in.Context.HashKey, r.env.Namespace, ch.Name))
	if err != nil {
		return nil, nil, err
	}
	var crds []string
	if ch.IncludeCRDs {
		for _, crd := range c.CRDObjects() {
			crds = append(crds, crd.Filename+"\x00"+string(crd.File.Data))
		}
	}
	return files, crds, nil
}

// releaseName is the Helm release name of a chart entry, ${...} expanded.
func (r *renderer) releaseName(a *app, ch *schema.Chart) (string, error) {
	n := a.t.ReleaseName(ch, a.name)
	out, err := expandVars(n, func(v string) (string, bool) {
		switch v {
		case "app":
			return a.name, true
		case "env_id":
			return r.env.EnvID, true
		}
		return "", false
	}, true)
	if err != nil {
		return "", fmt.Errorf("name_template: %w", err)
	}
	if ch.NameTemplate == "" && (a.t.Helm == nil || a.t.Helm.NameTemplate == "") {
		return cutName(out, maxReleaseName), nil // the app's name: a DNS label, maybe too long for Helm
	}
	if len(out) > maxReleaseName || !releaseNameRE.MatchString(out) {
		return "", fmt.Errorf("name_template: release name %q must be lower-case letters, digits and '-', at most %d characters", out, maxReleaseName)
	}
	return out, nil
}

// maxReleaseName is Helm's limit on a release name.
const maxReleaseName = 53

var releaseNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// capabilities are the cluster's, as the caller gave them, else Helm's defaults.
func (r *renderer) capabilities() (*chartcommon.Capabilities, error) {
	o := r.in.Context.Charts
	caps := chartcommon.DefaultCapabilities.Copy()
	if o.KubeVersion != "" {
		kv, err := chartcommon.ParseKubeVersion(o.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("kube version %q: %w", o.KubeVersion, err)
		}
		caps.KubeVersion = *kv
	}
	if len(o.APIVersions) > 0 {
		caps.APIVersions = append(append(chartcommon.VersionSet{}, caps.APIVersions...), o.APIVersions...)
	}
	return caps, nil
}

// missingDependencies names the dependencies Chart.yaml lists that are not
// vendored in charts/: arbor never downloads them.
func missingDependencies(c *chartv2.Chart) error {
	have := map[string]bool{}
	for _, d := range c.Dependencies() {
		have[d.Name()] = true
	}
	var missing []string
	for _, d := range c.Metadata.Dependencies {
		if d == nil {
			continue
		}
		if !have[d.Name] {
			missing = append(missing, d.Name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("chart %s: dependencies %s are not in its charts/ directory (arbor does not download dependencies: run helm dependency update and commit charts/)", c.Name(), strings.Join(missing, ", "))
	}
	for _, d := range c.Dependencies() {
		if err := missingDependencies(d); err != nil {
			return err
		}
	}
	return nil
}

// runEngine executes the chart's templates, rewritten with the guard, in a
// render slot, within the time limit and the output limit.
func runEngine(c *chartv2.Chart, top chartcommon.Values, lim ChartLimits, random io.Reader) (map[string]string, error) {
	deadline := time.Now().Add(lim.Timeout)
	timer := time.NewTimer(lim.Timeout)
	defer timer.Stop()
	select {
	case chartSlots <- struct{}{}:
	case <-timer.C:
		return nil, fmt.Errorf("no chart render slot became free within %s (charts.timeout): other charts are still rendering", lim.Timeout)
	}
	guardChart(c)
	// An included template's output is counted where it is produced and
	// again where it is printed: the running count gets room for a few
	// levels of include; the manifests themselves are held to the limit
	// after the render (dropNotes).
	g := &chartGuard{deadline: deadline, limit: lim.Timeout, maxOut: guardOutputFactor * lim.MaxOutputBytes, random: random}
	type result struct {
		files map[string]string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-chartSlots }()
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("the chart's templates failed: %v", p)}
			}
		}()
		e := engine.Engine{CustomTemplateFuncs: g.funcs()}
		files, err := e.RenderWithContext(context.Background(), c, top)
		done <- result{files, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			return nil, fmt.Errorf("templates: %w", res.err)
		}
		return dropNotes(res.files, lim)
	case <-timer.C:
		g.stopped.Store(true)
		return nil, fmt.Errorf("templates: the chart did not render within %s (charts.timeout)", lim.Timeout)
	}
}

// guardChart rewrites the templates of c and its dependencies (chartguard.go).
func guardChart(c *chartv2.Chart) {
	for _, t := range c.Templates {
		t.Data = []byte(guardTemplate(t.Name, string(t.Data)))
	}
	for _, d := range c.Dependencies() {
		guardChart(d)
	}
}

// dropNotes removes NOTES.txt files and checks the output size.
func dropNotes(files map[string]string, lim ChartLimits) (map[string]string, error) {
	var total int64
	for k, v := range files {
		if strings.HasSuffix(k, "/NOTES.txt") {
			delete(files, k)
			continue
		}
		total += int64(len(v))
		if total > lim.MaxOutputBytes {
			return nil, fmt.Errorf("the rendered manifests pass %s (charts.max_output_size)", repofs.FormatSize(lim.MaxOutputBytes))
		}
	}
	return files, nil
}

// addChartObjects decodes each rendered file (in name order), confines
// every object, and adds it to the chart's task, or, when it carries
// Helm's hook annotation, to the hooks.
func (r *renderer) addChartObjects(a *app, ch *schema.Chart, files map[string]string, crds []string) error {
	task := chartTaskPrefix + ch.Name
	var budget schema.AliasBudget
	for _, c := range crds {
		name, data, _ := strings.Cut(c, "\x00")
		objs, err := decodeManifest(&budget, name, data)
		if err != nil {
			return err
		}
		for _, u := range objs {
			if err := r.confine(a, u); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			r.add(u.Object, task)
		}
	}
	start := len(r.env.Hooks)
	for _, name := range sortedKeys(files) {
		objs, err := decodeManifest(&budget, name, files[name])
		if err != nil {
			return err
		}
		for _, u := range objs {
			hook, isHook := u.GetAnnotations()[annHook]
			if isHook {
				if err := r.addHook(a, task, name, hook, u); err != nil {
					return err
				}
				continue
			}
			if err := r.confine(a, u); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			uncommitted(u)
			r.add(u.Object, task)
		}
	}
	sortHooks(r.env.Hooks[start:])
	return nil
}

// uncommitted drops arbor's commit annotation from a chart's object: the
// object is what the chart renders, so a push that leaves the chart's
// output alone leaves the object alone (it is not patched for a new commit).
func uncommitted(u *unstructured.Unstructured) {
	ann := u.GetAnnotations()
	delete(ann, AnnotationCommit)
	if len(ann) == 0 {
		ann = nil
	}
	u.SetAnnotations(ann)
}

// Helm's hook annotations.
const (
	annHook             = "helm.sh/hook"
	annHookWeight       = "helm.sh/hook-weight"
	annHookDeletePolicy = "helm.sh/hook-delete-policy"
)

var phaseRank = map[HookPhase]int{HookBefore: 0, HookAfter: 1, HookTeardown: 2}

// sortHooks orders one chart's hooks as they run: by phase, then Helm's
// weight, then kind and name as Helm breaks ties.
func sortHooks(hs []Hook) {
	sort.SliceStable(hs, func(i, j int) bool {
		a, b := hs[i], hs[j]
		if a.Phase != b.Phase {
			return phaseRank[a.Phase] < phaseRank[b.Phase]
		}
		if a.Weight != b.Weight {
			return a.Weight < b.Weight
		}
		if a.Object.GetKind() != b.Object.GetKind() {
			return a.Object.GetKind() < b.Object.GetKind()
		}
		return a.Object.GetName() < b.Object.GetName()
	})
}

// addHook classifies one Helm hook (docs/charts.md). Test and rollback
// hooks have no place in arbor's workflow: they are left out, with a warning.
func (r *renderer) addHook(a *app, task, file, events string, u *unstructured.Unstructured) error {
	phase, evs := hookPhase(splitList(events))
	if phase == "" {
		r.warn(fmt.Sprintf("%s: hook %s/%s (%s) is left out: arbor runs only install, upgrade and delete hooks", task, u.GetKind(), u.GetName(), strings.Join(evs, ", ")))
		return nil
	}
	ann := u.GetAnnotations()
	weight, err := strconv.Atoi(strings.TrimSpace(ann[annHookWeight]))
	if err != nil {
		weight = 0 // as Helm reads a weight that is not a number
	}
	if err := r.confine(a, u); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	r.env.Hooks = append(r.env.Hooks, Hook{Task: task, Phase: phase, Events: evs, Weight: weight,
		DeletePolicies: splitList(ann[annHookDeletePolicy]), Object: u})
	return nil
}

// splitList splits a comma-separated annotation, as Helm reads it.
func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// hookPhase maps Helm's hook events onto arbor's phases: a hook that runs
// before install or upgrade runs before the chart's objects; after them, after;
// on delete, in teardown.
func hookPhase(evs []string) (HookPhase, []string) {
	var phase HookPhase
	for _, e := range evs {
		switch releasev1.HookEvent(e) {
		case releasev1.HookPreInstall, releasev1.HookPreUpgrade:
			phase = HookBefore
		case releasev1.HookPostInstall, releasev1.HookPostUpgrade:
			if phase == "" {
				phase = HookAfter
			}
		case releasev1.HookPreDelete, releasev1.HookPostDelete:
			if phase == "" {
				phase = HookTeardown
			}
		}
	}
	return phase, evs
}

// decodeManifest decodes the YAML documents of one rendered file, within
// the alias budget. A text without '*' holds no alias, so the budget's own
// parse is skipped (a third of a chart's render time): Helm's manifest
// sorter has already parsed it, depth limits included.
func decodeManifest(budget *schema.AliasBudget, name, data string) ([]*unstructured.Unstructured, error) {
	if strings.Contains(data, "*") {
		if err := budget.CheckYAML(name, []byte(data)); err != nil {
			return nil, err
		}
	}
	us, err := decodeYAMLObjects([]byte(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, u := range us {
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s: an object without apiVersion, kind or metadata.name", name)
		}
	}
	return us, nil
}

// chargeRead adds n bytes to what this render read for charts.
func chargeRead(read *int64, n int64, lim ChartLimits) error {
	if *read+n > lim.MaxTotalBytes {
		return fmt.Errorf("the chart files read in this render pass %s (charts.max_total_size)", repofs.FormatSize(lim.MaxTotalBytes))
	}
	*read += n
	return nil
}

// hasChart reports whether the app's chart of that name was rendered.
func (a *app) hasChart(name string) bool {
	for _, c := range a.charts {
		if c == name {
			return true
		}
	}
	return false
}

// resolveChartRoutes gives the hosts and rules that name a chart's Service
// their port: the first port of the Service of that name a chart of the
// app rendered. When none did, it is an error, unless a chart was skipped
// (not fetched, or from git): the route is then left out, with a warning.
func (r *renderer) resolveChartRoutes() error {
	var out []hostRoute
	for _, h := range r.routes {
		if !h.chart {
			out = append(out, h)
			continue
		}
		port, found := r.chartServicePort(schema.ObjectName(h.service))
		switch {
		case found:
			h.port, h.chart = port, false
			out = append(out, h)
			r.env.URLs = append(r.env.URLs, URL{Service: h.service, URL: r.url(h)})
		case len(h.app.charts) < len(h.app.t.Charts):
			w := fmt.Sprintf("%s: no service named %q and no rendered chart has a Service of that name (a chart was skipped); the host %s is left out", h.field, h.service, h.host)
			if !slices.Contains(r.env.Warnings, w) {
				r.warn(w)
			}
		default:
			return fmt.Errorf("%s: no service named %q, and no chart renders a Service of that name", h.field, h.service)
		}
	}
	r.routes = out
	return nil
}

// chartServicePort finds a Service named name among the charts' objects
// and returns its first port.
func (r *renderer) chartServicePort(name string) (int64, bool) {
	for task, refs := range r.env.Tasks {
		if !strings.HasPrefix(task, chartTaskPrefix) {
			continue
		}
		for _, ref := range refs {
			if ref.Kind != "Service" || ref.Group != "" || ref.Name != name {
				continue
			}
			for _, o := range r.objs {
				if str(o, "kind") != "Service" || objName(o) != name {
					continue
				}
				spec, _ := o["spec"].(map[string]any)
				ports, _ := spec["ports"].([]any)
				if len(ports) == 0 {
					return 0, false
				}
				p, _ := ports[0].(map[string]any)
				switch n := p["port"].(type) {
				case int64:
					return n, true
				case float64:
					return int64(n), true
				}
			}
		}
	}
	return 0, false
}

// HooksFor returns the hook objects of a chart task at one phase, in the
// order they run (docs/charts.md): what the workflow applies before,
// after, or at teardown around the task's own objects.
func (e *Environment) HooksFor(task string, phase HookPhase) []Hook {
	var out []Hook
	for _, h := range e.Hooks {
		if h.Task == task && h.Phase == phase {
			out = append(out, h)
		}
	}
	return out
}
