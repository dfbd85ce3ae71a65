package apply_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/internal/testcluster"
)

// benchEnvs is the number of environments of BenchmarkApply200Envs
// (ARBOR_BENCH_ENVS overrides it for a quick run).
func benchEnvs() int {
	if n, err := strconv.Atoi(os.Getenv("ARBOR_BENCH_ENVS")); err == nil && n > 0 {
		return n
	}
	return 200
}

// benchParallel is how many environments are applied at once, and the bound
// of requests in flight of the plain loop: the three ways get the same.
const benchParallel = 16

// benchEnv returns the five objects of one environment: its Namespace, a
// ConfigMap, a Secret, a Service and a one-replica Deployment.
func benchEnv(ns, run string) []*unstructured.Unstructured {
	objs := []*unstructured.Unstructured{
		namespace(ns), configMap("web-config", map[string]any{"greeting": "hello", "level": "info"}),
		secret("web-secret", map[string]any{"token": "bench-" + ns}), service("web"), deployment("web", "nginx:1.27", 1),
	}
	for _, o := range objs {
		if o.GetKind() != "Namespace" {
			o.SetNamespace(ns)
		}
		o.SetLabels(map[string]string{apply.LabelManagedBy: apply.ManagedByValue, "arbor.dev/bench": run})
	}
	return objs
}

type benchResult struct {
	create, unchanged time.Duration
	createRequests    string // requests of the create pass
	createLatency     string // mean latency by verb and resource in the create pass
	writes            string // non-dry-run writes of the unchanged pass
}

// benchRounds is how many times the engine and the plain loop are measured,
// alternating which goes first; the machine is shared, so single figures
// swing with other work. The engine with its watch cache, and kubectl (ten
// times slower), run once.
func benchRounds() int {
	if n, err := strconv.Atoi(os.Getenv("ARBOR_BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// BenchmarkApply200Envs applies 200 environments of 5 objects from zero and
// then again unchanged, three ways — the engine, `kubectl apply
// --server-side` once per environment, and a plain client-go server-side
// apply loop — and prints the times, the ratios, and the writes the
// unchanged pass sent. Between ways the environments are deleted (untimed),
// and between the two passes of a way every Deployment is waited for
// (untimed), so that each timed pass starts on a quiet cluster. Run it with
// -benchtime=1x.
func BenchmarkApply200Envs(b *testing.B) {
	kubeconfig := testcluster.KubeconfigPath(b)
	if _, err := exec.LookPath("kubectl"); err != nil {
		b.Fatal("kubectl is needed for the baseline: ", err)
	}
	n := benchEnvs()
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		run := testcluster.Name("bench")
		results := map[string][]benchResult{}
		ways := []string{"engine", "plain-loop"}
		var order []string
		for round := 0; round < benchRounds(); round++ {
			order = append(order, ways...)
			ways[0], ways[1] = ways[1], ways[0]
		}
		order = append(order, "kubectl")
		for k, way := range order {
			envs := make([][]*unstructured.Unstructured, n)
			for j := range envs {
				envs[j] = benchEnv(fmt.Sprintf("%s-%d-%d", run, k, j), run)
			}
			load := loadAverage()
			var r benchResult
			var err error
			switch way {
			case "engine":
				r, err = benchEngine(ctx, b, envs, apply.Options{})
			case "plain-loop":
				r, err = benchLoop(ctx, b, envs)
			case "kubectl":
				r, err = benchKubectl(ctx, b, kubeconfig, envs)
			}
			if err != nil {
				b.Fatalf("%s: %v", way, err)
			}
			fmt.Printf("%-12s create %9s  unchanged %9s  load %s\n    create requests: %s\n    create latency: %s\n    unchanged writes: %s\n",
				way, r.create.Round(time.Millisecond), r.unchanged.Round(time.Millisecond), load, r.createRequests, r.createLatency, r.writes)
			results[way] = append(results[way], r)
			// Untimed: the next way starts on a cluster without this one's objects.
			cleanupBench(ctx, b, run)
		}
		report(b, n, results)
	}
}

func report(b *testing.B, n int, r map[string][]benchResult) {
	med := func(way string, f func(benchResult) time.Duration) time.Duration {
		var ds []time.Duration
		for _, x := range r[way] {
			ds = append(ds, f(x))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	create := func(x benchResult) time.Duration { return x.create }
	unchanged := func(x benchResult) time.Duration { return x.unchanged }
	fmt.Printf("\n%d environments x 5 objects, %d environments at a time; medians of %d rounds (kubectl: 1)\n", n, benchParallel, len(r["engine"]))
	fmt.Printf("%-12s %12s %12s\n", "way", "create", "unchanged")
	for _, way := range []string{"engine", "plain-loop", "kubectl"} {
		fmt.Printf("%-12s %12s %12s\n", way, med(way, create).Round(time.Millisecond), med(way, unchanged).Round(time.Millisecond))
	}
	ratio := func(a, b time.Duration) float64 { return a.Seconds() / b.Seconds() }
	ec, lc, kc := med("engine", create), med("plain-loop", create), med("kubectl", create)
	eu, lu, ku := med("engine", unchanged), med("plain-loop", unchanged), med("kubectl", unchanged)
	fmt.Printf("create:    engine/plain-loop %.2fx   engine/kubectl %.2fx\n", ratio(ec, lc), ratio(ec, kc))
	fmt.Printf("unchanged: engine/plain-loop %.2fx   engine/kubectl %.2fx\n", ratio(eu, lu), ratio(eu, ku))
	b.ReportMetric(ec.Seconds(), "engine-create-s")
	b.ReportMetric(lc.Seconds(), "loop-create-s")
	b.ReportMetric(kc.Seconds(), "kubectl-create-s")
	b.ReportMetric(ratio(ec, lc), "create-engine/loop")
	b.ReportMetric(ratio(eu, lu), "unchanged-engine/loop")
}

// forEnvs runs fn on every environment, benchParallel at a time.
func forEnvs(ctx context.Context, envs [][]*unstructured.Unstructured, fn func(context.Context, []*unstructured.Unstructured) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(benchParallel)
	for _, objs := range envs {
		g.Go(func() error { return fn(ctx, objs) })
	}
	return g.Wait()
}

func timed(fn func() error) (time.Duration, error) {
	start := time.Now()
	err := fn()
	return time.Since(start), err
}

func benchEngine(ctx context.Context, b *testing.B, envs [][]*unstructured.Unstructured, opts apply.Options) (benchResult, error) {
	cfg := testcluster.Config(b)
	count := &apply.RequestCounter{}
	lat := &latencies{}
	cfg.Wrap(count.Wrap)
	cfg.Wrap(lat.wrap)
	e, err := apply.New(cfg, opts)
	if err != nil {
		return benchResult{}, err
	}
	pass := func() error {
		return forEnvs(ctx, envs, func(ctx context.Context, objs []*unstructured.Unstructured) error {
			_, err := e.Apply(ctx, objs, apply.ApplyOptions{Namespace: objs[0].GetName()})
			return err
		})
	}
	var r benchResult
	if r.create, err = timed(pass); err != nil {
		return r, err
	}
	r.createRequests, r.createLatency = count.String(), lat.String()
	if err := waitAll(ctx, e, envs); err != nil {
		return r, err
	}
	count.Reset()
	if r.unchanged, err = timed(pass); err != nil {
		return r, err
	}
	r.writes = fmt.Sprintf("%d (%s)", count.Writes(), count)
	return r, nil
}

// waitAll waits, untimed, for every environment to be ready, so that the
// controllers are quiet before the next pass is timed.
func waitAll(ctx context.Context, e *apply.Engine, envs [][]*unstructured.Unstructured) error {
	return forEnvs(ctx, envs, func(ctx context.Context, objs []*unstructured.Unstructured) error {
		return e.Wait(ctx, objs, apply.WaitOptions{Namespace: objs[0].GetName(), Timeout: 5 * time.Minute})
	})
}

var benchGVR = map[string]schema.GroupVersionResource{
	"Namespace":  {Version: "v1", Resource: "namespaces"},
	"ConfigMap":  {Version: "v1", Resource: "configmaps"},
	"Secret":     {Version: "v1", Resource: "secrets"},
	"Service":    {Version: "v1", Resource: "services"},
	"Deployment": {Group: "apps", Version: "v1", Resource: "deployments"},
}

// benchLoop is the plain client-go baseline: server-side apply of every
// object, Namespaces first, benchParallel requests in flight.
func benchLoop(ctx context.Context, b *testing.B, envs [][]*unstructured.Unstructured) (benchResult, error) {
	cfg := testcluster.Config(b)
	count := &apply.RequestCounter{}
	lat := &latencies{}
	cfg.Wrap(count.Wrap)
	cfg.Wrap(lat.wrap)
	dyn, err := dynamicFor(cfg)
	if err != nil {
		return benchResult{}, err
	}
	pass := func() error { return loopPass(ctx, dyn, envs) }
	var r benchResult
	if r.create, err = timed(pass); err != nil {
		return r, err
	}
	r.createRequests, r.createLatency = count.String(), lat.String()
	e, err := apply.New(testcluster.Config(b), apply.Options{})
	if err != nil {
		return r, err
	}
	if err := waitAll(ctx, e, envs); err != nil {
		return r, err
	}
	count.Reset()
	if r.unchanged, err = timed(pass); err != nil {
		return r, err
	}
	r.writes = fmt.Sprintf("%d (%s)", count.Writes(), count)
	return r, nil
}

func dynamicFor(cfg *rest.Config) (dynamic.Interface, error) { return dynamic.NewForConfig(cfg) }

// loopPass applies every Namespace, then every other object, each with one
// server-side apply, benchParallel at a time.
func loopPass(ctx context.Context, dyn dynamic.Interface, envs [][]*unstructured.Unstructured) error {
	applyAll := func(objs []*unstructured.Unstructured) error {
		g, ctx := errgroup.WithContext(ctx)
		g.SetLimit(benchParallel)
		for _, o := range objs {
			g.Go(func() error {
				ri := dyn.Resource(benchGVR[o.GetKind()])
				var c dynamic.ResourceInterface = ri
				if o.GetNamespace() != "" {
					c = ri.Namespace(o.GetNamespace())
				}
				_, err := c.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "plain-loop"})
				return err
			})
		}
		return g.Wait()
	}
	var namespaces, rest []*unstructured.Unstructured
	for _, objs := range envs {
		namespaces = append(namespaces, objs[0])
		rest = append(rest, objs[1:]...)
	}
	if err := applyAll(namespaces); err != nil {
		return err
	}
	return applyAll(rest)
}

// benchKubectl runs `kubectl apply --server-side` once per environment.
func benchKubectl(ctx context.Context, b *testing.B, kubeconfig string, envs [][]*unstructured.Unstructured) (benchResult, error) {
	dir := b.TempDir()
	files := make([]string, len(envs))
	for i, objs := range envs {
		var docs []string
		for _, o := range objs {
			y, err := yaml.Marshal(o.Object)
			if err != nil {
				return benchResult{}, err
			}
			docs = append(docs, string(y))
		}
		files[i] = filepath.Join(dir, fmt.Sprintf("env-%d.yaml", i))
		if err := os.WriteFile(files[i], []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
			return benchResult{}, err
		}
	}
	cacheDir := filepath.Join(dir, "kube-cache")
	pass := func() error {
		g, ctx := errgroup.WithContext(ctx)
		g.SetLimit(benchParallel)
		for _, f := range files {
			g.Go(func() error {
				out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", kubeconfig, "--cache-dir", cacheDir,
					"apply", "--server-side", "--field-manager", "kubectl-bench", "-f", f).CombinedOutput()
				if err != nil {
					return fmt.Errorf("kubectl apply -f %s: %v: %s", f, err, out)
				}
				return nil
			})
		}
		return g.Wait()
	}
	var r benchResult
	var err error
	if r.create, err = timed(pass); err != nil {
		return r, err
	}
	e, err := apply.New(testcluster.Config(b), apply.Options{})
	if err != nil {
		return r, err
	}
	if err := waitAll(ctx, e, envs); err != nil {
		return r, err
	}
	if r.unchanged, err = timed(pass); err != nil {
		return r, err
	}
	r.writes = "not counted (another process); kubectl sends every object"
	return r, nil
}

// cleanupBench deletes the benchmark's namespaces and waits (bounded) for them.
func cleanupBench(ctx context.Context, b testing.TB, run string) {
	cs := testcluster.Clientset(b)
	sel := metav1.ListOptions{LabelSelector: "arbor.dev/bench=" + run}
	list, err := cs.CoreV1().Namespaces().List(ctx, sel)
	if err != nil {
		b.Logf("cleanup: %v", err)
		return
	}
	for _, ns := range list.Items {
		if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			b.Logf("cleanup %s: %v", ns.Name, err)
		}
	}
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		left, err := cs.CoreV1().Namespaces().List(ctx, sel)
		if err != nil || len(left.Items) == 0 {
			return
		}
		time.Sleep(2 * time.Second)
	}
	b.Logf("cleanup: namespaces of %s still terminating", run)
}

// loadAverage is the machine's load (from /proc/loadavg), printed with the
// figures because other work on the machine skews them.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// latencies records the mean latency of requests by verb and resource.
type latencies struct {
	mu sync.Mutex
	d  map[string][]time.Duration
}

func (l *latencies) wrap(rt http.RoundTripper) http.RoundTripper {
	return rtf(func(req *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		// The resource is the path segment before the name: .../namespaces/NS/configmaps/NAME.
		parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
		kind := "discovery"
		if len(parts) >= 2 && strings.Contains(req.URL.Path, "/namespaces") {
			kind = parts[len(parts)-2]
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.d == nil {
			l.d = map[string][]time.Duration{}
		}
		k := req.Method + " " + kind
		l.d[k] = append(l.d[k], time.Since(start))
		return resp, err
	})
}

type rtf func(*http.Request) (*http.Response, error)

func (f rtf) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// String renders "PATCH services 200×650ms, ..." in a stable order.
func (l *latencies) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k, ds := range l.d {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		out = append(out, fmt.Sprintf("%s %d×%s", k, len(ds), (sum/time.Duration(len(ds))).Round(time.Millisecond)))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
