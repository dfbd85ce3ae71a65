package reconciler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/internal/testcluster"
)

// BenchmarkScale measures, in one run (issue 17):
//
//   - rss: the arbor binary, one app, main deployed; then N branches appear
//     at once. Reported: the daemon's resident memory once main is Ready
//     (VmRSS), its peak (VmHWM) after all N+1 are Ready and two no-op
//     resyncs, and the growth per environment, (peak − base) / N.
//   - baseline: a plain client-go loop that server-side applies the same
//     objects (those arbor made for one environment, moved to N new
//     namespaces), 64 at a time, and waits for the same Deployments to be
//     available; arbor's zero-to-ready time over it.
//   - marginal: n/2 more branches appear at the same daemon; the growth
//     of its peaks over n/2 is what one more environment costs, without
//     what a burst holds in flight or the daemon sets up once.
//   - replicas (ARBOR_BENCH_REPLICAS=1): 30 apps sharing N environments
//     (ARBOR_BENCH_REPLICA_ENVS, default N), zero to all Ready with one
//     replica, then (other apps) with three.
//
// N is ARBOR_BENCH_ENVS (default 1000); ARBOR_BENCH_CONCURRENCY sets the
// rss daemon's concurrency (64); ARBOR_BENCH_BASELINE=0 leaves the
// baseline out. On a shared machine run it smaller
// and say so: every figure is of one sitting.
//
//	go test ./reconciler -run '^$' -bench Scale -benchtime 1x -timeout 60m
func BenchmarkScale(b *testing.B) {
	n := 1000
	if v := os.Getenv("ARBOR_BENCH_ENVS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	need := 2*n + n/2 // arbor's environments and the marginal half, then the baseline's
	if os.Getenv("ARBOR_BENCH_REPLICAS") != "" {
		need += 2 * n
		if v := os.Getenv("ARBOR_BENCH_REPLICA_ENVS"); v != "" {
			m, _ := strconv.Atoi(v)
			need += 2*m - 2*n
		}
	}
	podRoom(b, need+50)
	arborTook, sample := benchRSS(b, n)
	if os.Getenv("ARBOR_BENCH_BASELINE") != "0" {
		baseTook := benchBaseline(b, n, sample)
		b.ReportMetric(arborTook.Seconds()/baseTook.Seconds(), "arbor/baseline")
		b.Logf("zero to %d ready: arbor %s, client-go baseline %s: ratio %.2f", n, arborTook.Round(100*time.Millisecond), baseTook.Round(100*time.Millisecond), arborTook.Seconds()/baseTook.Seconds())
	}
	if os.Getenv("ARBOR_BENCH_REPLICAS") != "" {
		m := n
		if v := os.Getenv("ARBOR_BENCH_REPLICA_ENVS"); v != "" {
			m, _ = strconv.Atoi(v)
		}
		one := benchReplicas(b, m, 1)
		three := benchReplicas(b, m, 3)
		b.ReportMetric(one.Seconds()/three.Seconds(), "speedup-3-replicas")
		b.Logf("zero to %d ready over 30 apps: one replica %s, three replicas %s", m, one.Round(100*time.Millisecond), three.Round(100*time.Millisecond))
	}
	if v := os.Getenv("ARBOR_BENCH_SCALEOUT"); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m < 30 {
			b.Fatalf("ARBOR_BENCH_SCALEOUT=%q: want a number of environments, at least 30", v)
		}
		one := scaleOut(b, m, 1)
		three := scaleOut(b, m, 3)
		b.ReportMetric(one.Seconds(), "s-to-ready-1-replica")
		b.ReportMetric(three.Seconds(), "s-to-ready-3-replicas")
		b.Logf("scale-out: zero to %d ready over 30 apps, each on a fresh cluster: one replica %s, three replicas %s (one ÷ three = %.2f)",
			m, one.Round(100*time.Millisecond), three.Round(100*time.Millisecond), one.Seconds()/three.Seconds())
	}
	b.ReportMetric(0, "ns/op")
}

// scaleOut runs benchReplicas with m environments on a fresh cluster of its
// own (hack/cluster.sh, $ARBOR_CLUSTER-so<replicas>), deleted afterwards:
// no phase waits for the previous one's thousands of namespaces to go. It
// logs the control plane's memory at the end, the figure that bounds m on
// one machine.
func scaleOut(b *testing.B, m, replicas int) time.Duration {
	base := os.Getenv("ARBOR_CLUSTER")
	if base == "" {
		base = "arbor"
	}
	c := testcluster.Named(b, fmt.Sprintf("%s-so%d", base, replicas))
	defer c.Down(b)
	c.ScaleNodes(b, m/100+3) // 110 pods a node
	took := benchReplicasOn(b, c.Clientset(b), c.Kubeconfig, m, replicas)
	for _, comp := range []string{"kube-apiserver", "etcd", "kube-controller-manager"} {
		if kib, ok := componentRSS(c.Name, comp); ok {
			b.Logf("scale-out: %d replica(s), %d environments: %s resident %.0f MiB", replicas, m, comp, kib/1024)
		}
	}
	return took
}

// componentRSS reads VmRSS of the control-plane component comp of the kwok
// cluster named cluster (found by its binary's path).
func componentRSS(cluster, comp string) (float64, bool) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	want := "/clusters/" + cluster + "/bin/" + comp
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.HasSuffix(strings.SplitN(string(cmdline), "\x00", 2)[0], want) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(d, "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				kib, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
				return kib, true
			}
		}
	}
	return 0, false
}

// podRoom fails b unless the cluster's nodes can take want more pods: a
// pod that finds no room stays Pending and the clock would time the wait.
func podRoom(b *testing.B, want int) {
	cs := testcluster.Clientset(b)
	ctx := context.Background()
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	room := int64(0)
	for _, nd := range nodes.Items {
		room += nd.Status.Allocatable.Pods().Value()
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		b.Fatal(err)
	}
	if free := room - int64(len(pods.Items)); free < int64(want) {
		b.Fatalf("the cluster's %d nodes have room for %d more pods, the benchmark needs %d: add kwok nodes (hack/cluster.sh bin)/kwokctl scale node --name $ARBOR_CLUSTER --replicas N", len(nodes.Items), free, want)
	}
}

// benchRSS runs one replica on one app and returns its zero-to-ready time for
// n new branches (the clock starts when the branches appear) and the
// namespace of one of its environments.
func benchRSS(b *testing.B, n int) (time.Duration, string) {
	cs := testcluster.Clientset(b)
	own := testcluster.Namespace(b, cs)
	app := appName(b)
	r := newRepo(b, webApp)
	binary(b)
	concurrency := "64"
	if c := os.Getenv("ARBOR_BENCH_CONCURRENCY"); c != "" {
		concurrency = c
	}
	body := "apps:\n- name: " + app + "\n  repo: " + r.dir + "\n  poll_interval: 5s\ndefaults: {domain: bench.local}\nnamespace: " + own + "\nconcurrency: " + concurrency + "\n"
	p := startProcess(b, "rss", body, "--log-level", "warn", "--lease-duration", "30s", "--lease-renew-deadline", "20s", "--lease-retry-period", "2s", "--pprof")
	eventually(b, 120*time.Second, "main ready", func() bool { return readyCount(p.environments(app)) == 1 })
	time.Sleep(6 * time.Second) // a poll with nothing to do
	base := procStatus(b, p.cmd.Process.Pid, "VmRSS:")
	baseAnon := procStatus(b, p.cmd.Process.Pid, "RssAnon:")
	baseFile := procStatus(b, p.cmd.Process.Pid, "RssFile:")
	baseHeap, _ := p.metric("go_memstats_heap_inuse_bytes")
	req0 := p.requestsByVerb()
	mem := sampleMemory(p.cmd.Process.Pid)
	cpu0 := cpuSeconds(b, p.cmd.Process.Pid)
	profiles := os.Getenv("ARBOR_BENCH_PROFILES")
	if profiles != "" {
		go saveProfile(b, p.url+"/debug/pprof/profile?seconds=15", filepath.Join(profiles, fmt.Sprintf("cpu-scale-%d.pprof", n)))
	}
	start := time.Now()
	addBranches(b, r.dir, 0, n)
	midProfile := func(ready int) {
		if profiles != "" && ready >= n/2 {
			saveProfile(b, p.url+"/debug/pprof/heap?gc=1", filepath.Join(profiles, fmt.Sprintf("heap-mid-scale-%d.pprof", n)))
			profiles = "" // once
		}
	}
	waitReadyCountEach(b, []*process{p}, []string{app}, n+1, 30*time.Minute, midProfile)
	took := time.Since(start)
	cpu := cpuSeconds(b, p.cmd.Process.Pid) - cpu0
	req1 := p.requestsByVerb()
	p.resyncTwice(b, n+1)
	peak := procStatus(b, p.cmd.Process.Pid, "VmHWM:")
	now := procStatus(b, p.cmd.Process.Pid, "VmRSS:")
	anonPeak, filePeak := mem.stop()
	perEnv := (peak - base) / float64(n) // KiB
	anonPerEnv := (anonPeak - baseAnon) / float64(n)
	b.ReportMetric(peak/1024, "peak-RSS-MiB")
	b.ReportMetric(perEnv, "RSS-KiB/env")
	b.ReportMetric(anonPeak/1024, "peak-anon-MiB")
	b.ReportMetric(anonPerEnv, "anon-KiB/env")
	b.Logf("rss: %d environments: base %.0f MiB with main Ready; peak %.0f MiB, %.0f MiB after two no-op resyncs; growth %.1f KiB per environment; zero to ready %s",
		n+1, base/1024, peak/1024, now/1024, perEnv, took.Round(100*time.Millisecond))
	b.Logf("rss: of which anonymous (the process's own memory; RssAnon sampled every 100 ms): base %.0f MiB, peak %.0f MiB, growth %.1f KiB per environment; file-backed (the binary's pages, RssFile) %.0f MiB at base, %.0f MiB at the anonymous peak",
		baseAnon/1024, anonPeak/1024, anonPerEnv, baseFile/1024, filePeak/1024)
	if heap, ok := p.metric("go_memstats_heap_inuse_bytes"); ok {
		b.Logf("rss: heap in use %.0f MiB with main Ready, %.0f MiB after the resyncs: %.1f KiB per environment", baseHeap/(1<<20), heap/(1<<20), (heap-baseHeap)/1024/float64(n))
	}
	b.Logf("rss: GOGC=%q GOMEMLIMIT=%q (GOGC unset: the daemon's own default, 50)", os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT"))
	b.Logf("arbor: requests to bring %d environments up: %s", n, perEnvCounts(req0, req1, n))
	b.Logf("arbor: %.1f CPU-seconds from the branches' creation to all ready (%.1f ms per environment)", cpu, cpu*1000/float64(n))
	if dir := os.Getenv("ARBOR_BENCH_PROFILES"); dir != "" {
		saveProfile(b, p.url+"/debug/pprof/heap?gc=1", filepath.Join(dir, fmt.Sprintf("heap-scale-%d.pprof", n)))
	}
	marginalRSS(b, p, app, r.dir, n, peak, anonPeak)
	p.kill()
	return took, app + "-b0000"
}

// marginalRSS adds n/2 more branches to the daemon benchRSS brought to n+1
// Ready environments and reports what each added environment costs: the
// growth of the peaks from the first n+1 to all 3n/2+1, over n/2. Both
// peaks come from a burst of branches at the daemon's concurrency, so what
// a burst holds in flight (renders, requests, goroutines) and what the
// daemon sets up once for its first environments (the diagnostics' and
// records' watches, the pools of the metrics handler and the clients) are
// in both and cancel out; (peak − base) / n above counts them as if each
// environment kept a share of them.
func marginalRSS(b *testing.B, p *process, app, repo string, n int, peak0, anonPeak0 float64) {
	m := n / 2
	if m == 0 {
		return
	}
	mem := sampleMemory(p.cmd.Process.Pid)
	addBranches(b, repo, n, m)
	waitReadyCount(b, []*process{p}, []string{app}, n+m+1, 30*time.Minute)
	p.resyncTwice(b, n+m+1)
	peak := procStatus(b, p.cmd.Process.Pid, "VmHWM:")
	anonPeak, _ := mem.stop() // of this phase only; VmHWM is of the whole run
	if peak <= peak0 || anonPeak <= anonPeak0 {
		b.Logf("rss: the added environments' burst did not pass the first burst's peak: the marginal figures below are not a measure of them")
	}
	perEnv, anonPerEnv := (peak-peak0)/float64(m), (anonPeak-anonPeak0)/float64(m)
	b.ReportMetric(perEnv, "marginal-RSS-KiB/env")
	b.ReportMetric(anonPerEnv, "marginal-anon-KiB/env")
	b.Logf("rss: %d more environments (%d in all): peak %.0f MiB (anonymous %.0f MiB) against %.0f MiB (%.0f MiB) at %d: %.1f KiB (anonymous %.1f KiB) per added environment",
		m, n+m+1, peak/1024, anonPeak/1024, peak0/1024, anonPeak0/1024, n+1, perEnv, anonPerEnv)
}

// addBranches creates count branches at the repository's HEAD, b<from> on,
// in one update-ref (the daemon sees them in one fsnotify event).
func addBranches(b *testing.B, repo string, from, count int) {
	head := git(b, repo, "rev-parse", "HEAD")
	var refs strings.Builder
	for i := from; i < from+count; i++ {
		fmt.Fprintf(&refs, "create refs/heads/b%04d %s\n", i, head)
	}
	cmd := gitCmd(repo, "update-ref", "--stdin")
	cmd.Stdin = strings.NewReader(refs.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("update-ref: %v\n%s", err, out)
	}
}

// resyncTwice has the daemon reconcile its envs environments twice more
// (no-op resyncs) and returns when its reconcile count says it has.
func (p *process) resyncTwice(b *testing.B, envs int) {
	rec0 := p.mustMetric(b, "arbor_reconcile_duration_seconds_count")
	for p.mustMetric(b, "arbor_reconcile_duration_seconds_count") < rec0+float64(2*envs) {
		p.mustRun()
		time.Sleep(250 * time.Millisecond)
	}
}

// procStatus reads a /proc/PID/status field in KiB.
func procStatus(b *testing.B, pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field) {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// waitReadyCount waits until the apps' Ready environments, as the first
// replica's status API shows them, number want.
func waitReadyCount(b *testing.B, ps []*process, apps []string, want int, timeout time.Duration) {
	waitReadyCountEach(b, ps, apps, want, timeout, nil)
}

// waitReadyCountEach is waitReadyCount calling each (when not nil) with the
// count of every poll.
func waitReadyCountEach(b *testing.B, ps []*process, apps []string, want int, timeout time.Duration, each func(ready int)) {
	deadline := time.Now().Add(timeout)
	for {
		ready := 0
		for _, app := range apps {
			ready += readyCount(ps[0].environments(app))
		}
		if each != nil {
			each(ready)
		}
		if ready == want {
			return
		}
		for _, p := range ps {
			p.mustRun()
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d ready after %s", ready, want, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// benchBaseline applies, with client-go alone, the objects arbor made in
// namespace sample to n new namespaces (64 at a time, server-side apply,
// the Namespace first) and waits until every Deployment is available.
func benchBaseline(b *testing.B, n int, sample string) time.Duration {
	cfg := testcluster.Config(b)
	cs := kubernetes.NewForConfigOrDie(cfg)
	var counter verbResourceCounter
	counted := rest.CopyConfig(cfg)
	counted.Wrap(counter.wrap)
	dyn := dynamic.NewForConfigOrDie(counted)
	ctx := context.Background()
	objs := sampleObjects(b, dyn, sample)
	run := "base" + randHex(3)
	b.Cleanup(func() {
		l, _ := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "arbor-bench=" + run})
		for _, ns := range l.Items {
			_ = cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		}
	})
	start := time.Now()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		ns := fmt.Sprintf("%s-%04d", run, i)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := applyInto(ctx, dyn, ns, run, objs); err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("baseline apply: %v", firstErr)
	}
	for {
		l, err := cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: "arbor-bench=" + run, ResourceVersion: "0"})
		if err == nil && availableCount(l.Items) == n {
			break
		}
		if time.Since(start) > 30*time.Minute {
			b.Fatal("baseline: Deployments not available after 30 minutes")
		}
		time.Sleep(500 * time.Millisecond)
	}
	took := time.Since(start)
	b.Logf("baseline: %d environments applied with client-go and available in %s", n, took.Round(100*time.Millisecond))
	b.Logf("baseline: requests (its waiting lists not counted: one every 500 ms for all): %s", perEnvCounts(nil, counter.snapshot(), n))
	return took
}

func availableCount(ds []appsv1.Deployment) int {
	c := 0
	for _, d := range ds {
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		if d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas == want && d.Status.UpdatedReplicas == want {
			c++
		}
	}
	return c
}

// sampleKinds are the kinds of a webApp environment, the Namespace first.
var sampleKinds = []schema.GroupVersionResource{
	{Version: "v1", Resource: "configmaps"},
	{Version: "v1", Resource: "services"},
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
}

// sampleObjects reads arbor's objects in ns (the record and the secret
// reader's RoleBinding left out: they are arbor's own bookkeeping), without
// what the server set.
func sampleObjects(b *testing.B, dyn dynamic.Interface, ns string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, gvr := range sampleKinds {
		l, err := dyn.Resource(gvr).Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=arbor"})
		if err != nil {
			b.Fatal(err)
		}
		for i := range l.Items {
			o := l.Items[i].DeepCopy()
			if o.GetName() == "arbor-environment" {
				continue
			}
			unstructured.RemoveNestedField(o.Object, "status")
			for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "ownerReferences"} {
				unstructured.RemoveNestedField(o.Object, "metadata", f)
			}
			if gvr.Resource == "services" {
				unstructured.RemoveNestedField(o.Object, "spec", "clusterIP")
				unstructured.RemoveNestedField(o.Object, "spec", "clusterIPs")
				ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
				for _, p := range ports {
					delete(p.(map[string]any), "nodePort")
				}
				_ = unstructured.SetNestedSlice(o.Object, ports, "spec", "ports")
			}
			out = append(out, o)
		}
	}
	if len(out) < 3 {
		b.Fatalf("only %d objects of arbor's in %s to copy", len(out), ns)
	}
	return out
}

// applyInto creates namespace ns and applies objs into it, labelled run.
func applyInto(ctx context.Context, dyn dynamic.Interface, ns, run string, objs []*unstructured.Unstructured) error {
	nsObj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": ns, "labels": map[string]any{"arbor-bench": run}}}}
	if err := applyOne(ctx, dyn, schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, nsObj); err != nil {
		return err
	}
	for i, o := range objs {
		c := o.DeepCopy()
		c.SetNamespace(ns)
		l := c.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l["arbor-bench"] = run
		delete(l, "arbor.dev/install") // not arbor's: no arbor reads them
		delete(l, "app.kubernetes.io/managed-by")
		c.SetLabels(l)
		if err := applyOne(ctx, dyn, sampleKinds[kindIndex(c)], c); err != nil {
			return fmt.Errorf("object %d: %w", i, err)
		}
	}
	return nil
}

func kindIndex(o *unstructured.Unstructured) int {
	switch o.GetKind() {
	case "ConfigMap":
		return 0
	case "Service":
		return 1
	case "Deployment":
		return 2
	default:
		return 3
	}
}

func applyOne(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, o *unstructured.Unstructured) error {
	data, err := json.Marshal(o.Object)
	if err != nil {
		return err
	}
	force := true
	_, err = dyn.Resource(gvr).Namespace(o.GetNamespace()).Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "bench", Force: &force})
	return err
}

// benchReplicas runs `replicas` arbor binaries on 30 fresh apps sharing n
// environments (n/30 branches each, main included) and returns the time from
// their start to every environment Ready.
func benchReplicas(b *testing.B, n, replicas int) time.Duration {
	return benchReplicasOn(b, testcluster.Clientset(b), "", n, replicas)
}

// benchReplicasOn is benchReplicas on the cluster of kubeconfig ("": the
// test cluster), whose client is cs.
func benchReplicasOn(b *testing.B, cs kubernetes.Interface, kubeconfig string, n, replicas int) time.Duration {
	own := testcluster.Namespace(b, cs)
	const nApps = 30
	var body strings.Builder
	body.WriteString("apps:\n")
	var apps []string
	per := max(1, n/nApps)
	for range nApps {
		app := appName(b)
		r := newRepo(b, webApp)
		head := git(b, r.dir, "rev-parse", "HEAD")
		var refs strings.Builder
		for i := range per - 1 {
			fmt.Fprintf(&refs, "create refs/heads/b%04d %s\n", i, head)
		}
		cmd := gitCmd(r.dir, "update-ref", "--stdin")
		cmd.Stdin = strings.NewReader(refs.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("update-ref: %v\n%s", err, out)
		}
		apps = append(apps, app)
		fmt.Fprintf(&body, "- {name: %s, repo: %s, poll_interval: 5s}\n", app, r.dir)
	}
	body.WriteString("defaults: {domain: bench.local}\nnamespace: " + own + "\nconcurrency: 64\n")
	start := time.Now()
	var ps []*process
	for i := range replicas {
		// default-like lease timings: at 3000 environments on a loaded
		// machine 6 s leases lapsed and every replica stopped its apps
		args := []string{"--log-level", "warn", "--lease-duration", "30s", "--lease-renew-deadline", "20s", "--lease-retry-period", "2s"}
		if kubeconfig != "" {
			args = append(args, "--kubeconfig", kubeconfig) // the last --kubeconfig is the one used
		}
		ps = append(ps, startProcess(b, fmt.Sprintf("r%d-%d", replicas, i), body.String(), args...))
	}
	waitReadyCount(b, ps, apps, per*nApps, 30*time.Minute)
	took := time.Since(start)
	b.Logf("%d replica(s): %d environments over %d apps ready in %s", replicas, per*nApps, nApps, took.Round(100*time.Millisecond))
	for _, p := range ps {
		p.kill()
	}
	return took
}

// cpuSeconds reads the user and system CPU time of process pid.
func cpuSeconds(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // after "pid (comm) "
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// memSampler reads a process's RssAnon every 100 ms and keeps its peak (the
// kernel keeps only the peak of the whole resident set, VmHWM, which also
// counts the binary's file-backed pages).
type memSampler struct {
	done chan struct{}
	out  chan [2]float64 // peak RssAnon and the RssFile read with it, KiB
}

func sampleMemory(pid int) *memSampler {
	m := &memSampler{done: make(chan struct{}), out: make(chan [2]float64, 1)}
	go func() {
		var peak [2]float64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if anon, file, ok := rssParts(pid); ok && anon > peak[0] {
				peak = [2]float64{anon, file}
			}
			select {
			case <-m.done:
				m.out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// stop ends the sampling and returns the peak RssAnon and the RssFile beside it, in KiB.
func (m *memSampler) stop() (anon, file float64) {
	close(m.done)
	p := <-m.out
	return p[0], p[1]
}

func rssParts(pid int) (anon, file float64, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, false
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		for field, dst := range map[string]*float64{"RssAnon:": &anon, "RssFile:": &file} {
			if strings.HasPrefix(line, field) {
				*dst, _ = strconv.ParseFloat(strings.Fields(line)[1], 64)
				n++
			}
		}
	}
	return anon, file, n == 2
}

// requestsByVerb reads the daemon's arbor_api_requests_total by verb (get
// counts lists too). A verb never sent has no series.
func (p *process) requestsByVerb() map[string]float64 {
	out := map[string]float64{}
	for _, v := range []string{"get", "watch", "create", "update", "patch", "apply", "delete", "apply-dryrun", "patch-dryrun", "create-dryrun"} {
		if n, ok := p.metric(`arbor_api_requests_total{verb="` + v + `"}`); ok {
			out[v] = n
		}
	}
	return out
}

// perEnvCounts prints the requests between two readings, by verb, and per environment.
func perEnvCounts(before, after map[string]float64, n int) string {
	var parts []string
	total := 0.0
	for _, v := range slices.Sorted(maps.Keys(after)) {
		if d := after[v] - before[v]; d > 0 {
			parts = append(parts, fmt.Sprintf("%.0f %s", d, v))
			total += d
		}
	}
	return fmt.Sprintf("%s: %.0f, %.2f per environment", strings.Join(parts, ", "), total, total/float64(n))
}

// verbResourceCounter counts requests by verb and resource, for the baseline.
type verbResourceCounter struct {
	mu     sync.Mutex
	counts map[string]float64
}

func (c *verbResourceCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return countingTransport{c: c, rt: rt}
}

// countingTransport counts each request by "verb resource" and sends it on.
type countingTransport struct {
	c  *verbResourceCounter
	rt http.RoundTripper
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := apply.Verb(req) + " " + resourceOf(req.URL.Path)
	t.c.mu.Lock()
	if t.c.counts == nil {
		t.c.counts = map[string]float64{}
	}
	t.c.counts[key]++
	t.c.mu.Unlock()
	return t.rt.RoundTrip(req)
}

// resourceOf is the resource an API path names (/api/v1/namespaces/N/services/S → services).
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	start := 2 // api/v1
	if len(parts) > 0 && parts[0] == "apis" {
		start = 3 // apis/group/version
	}
	rest := parts[min(start, len(parts)):]
	if len(rest) >= 2 && rest[0] == "namespaces" && len(rest) > 2 {
		rest = rest[2:]
	}
	if len(rest) == 0 {
		return "discovery"
	}
	return rest[0]
}

func (c *verbResourceCounter) snapshot() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}
