package reconciler_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// pushes per latency benchmark
const latencySamples = 25

// BenchmarkPushToApplied measures the time from a commit (local repository,
// seen through fsnotify) or a push followed by a signed webhook (HTTP
// repository) to its environment Ready at that commit: applied and every
// object ready. The environment has five objects.
func BenchmarkPushToApplied(b *testing.B) {
	b.Run("fsnotify", func(b *testing.B) {
		cs := testcluster.Clientset(b)
		own := testcluster.Namespace(b, cs)
		app := appName(b)
		r := newRepo(b, webApp)
		d := startDaemon(b, newConfig(b, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\ndefaults: {domain: bench.local}\n"))
		d.waitPhase(app, "main", reconciler.PhaseReady, 60*time.Second)
		r.on("feature/bench")
		lat := make([]time.Duration, 0, latencySamples)
		for i := range latencySamples {
			start := time.Now()
			c := r.commit(fmt.Sprintf("change %d", i), map[string]string{"f.txt": strconv.Itoa(i)})
			waitInMemory(b, d, app, "feature/bench", c)
			if i > 0 { // the first creates the namespace
				lat = append(lat, time.Since(start))
			}
		}
		report(b, "push to applied", lat)
	})
	b.Run("webhook", func(b *testing.B) {
		cs := testcluster.Clientset(b)
		own := testcluster.Namespace(b, cs)
		app := appName(b)
		srv := newGitServer(b)
		r := newRepo(b, webApp)
		url := srv.serve(r, app)
		dir := b.TempDir()
		for name, v := range map[string]string{"user": srv.user, "pass": srv.pass, "hook": "bench-secret"} {
			if err := os.WriteFile(dir+"/"+name, []byte(v), 0o600); err != nil {
				b.Fatal(err)
			}
		}
		d := startDaemon(b, newConfig(b, own, "apps:\n- name: "+app+"\n  repo: "+url+"\n  poll_interval: 1h\n  auth: {username_file: "+dir+"/user, password_file: "+dir+"/pass}\ndefaults: {domain: bench.local}\nserver: {webhook_secret_file: "+dir+"/hook}\n"))
		d.waitPhase(app, "main", reconciler.PhaseReady, 60*time.Second)
		r.on("feature/bench")
		body := `{"ref":"refs/heads/feature/bench","repository":{"clone_url":"` + url + `"}}`
		lat := make([]time.Duration, 0, latencySamples)
		for i := range latencySamples {
			c := r.commit(fmt.Sprintf("change %d", i), map[string]string{"f.txt": strconv.Itoa(i)})
			r.push("feature/bench")
			start := time.Now() // the forge sends its webhook once the push is accepted
			if code := postHookTB(b, d.srv.URL+"/hooks/github", body, sign("bench-secret", body)); code != http.StatusAccepted {
				b.Fatalf("webhook: %d", code)
			}
			waitInMemory(b, d, app, "feature/bench", c)
			if i > 0 {
				lat = append(lat, time.Since(start))
			}
		}
		report(b, "push to applied", lat)
	})
}

// waitInMemory polls the daemon's status every millisecond.
func waitInMemory(b *testing.B, d *daemon, app, branch, commit string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range d.rec.Environments(app) {
			if e.Branch == branch && e.Commit == commit && e.Phase == reconciler.PhaseReady {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("%s@%s not ready at %s", app, branch, commit)
}

func report(b *testing.B, what string, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	b.ReportMetric(float64(p(0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(p(0.99).Milliseconds()), "p99-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s over %d samples: p50 %s, p99 %s, min %s, max %s", what, len(lat), p(0.5), p(0.99), lat[0], lat[len(lat)-1])
}

func postHookTB(b testing.TB, url, body, sig string) int {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// BenchmarkZeroToReady runs the arbor binary against a local repository with
// N branches (plus main) and no environment yet, and measures the time until
// every environment is Ready; then the API requests of no-op resyncs, and the
// daemon's peak RSS (VmHWM). In the same run, unless ARBOR_BENCH_BASELINE=0,
// a plain client-go loop applies the same objects into n new namespaces and
// waits for the same Deployments (benchBaseline), and arbor's time over the
// loop's is reported as arbor/baseline.
func BenchmarkZeroToReady(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			podRoom(b, 2*n+50)
			zeroToReady(b, n)
		})
	}
}

func zeroToReady(b *testing.B, n int) {
	cs := testcluster.Clientset(b)
	own := testcluster.Namespace(b, cs)
	app := appName(b)
	r := newRepo(b, webApp)
	head := git(b, r.dir, "rev-parse", "HEAD")
	var refs strings.Builder
	for i := range n {
		fmt.Fprintf(&refs, "create refs/heads/b%04d %s\n", i, head)
	}
	cmd := gitCmd(r.dir, "update-ref", "--stdin")
	cmd.Stdin = strings.NewReader(refs.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("update-ref: %v\n%s", err, out)
	}
	concurrency := "64"
	if c := os.Getenv("ARBOR_BENCH_CONCURRENCY"); c != "" {
		concurrency = c
	}
	binary(b) // built before the clock starts
	body := "apps:\n- name: " + app + "\n  repo: " + r.dir + "\n  poll_interval: 5s\ndefaults: {domain: bench.local}\nnamespace: " + own + "\nconcurrency: " + concurrency + "\n"
	start := time.Now()
	// default-like lease timings: a loaded API server must not cost the lease
	args := []string{"--log-level", "warn", "--lease-duration", "30s", "--lease-renew-deadline", "20s", "--lease-retry-period", "2s", "--pprof"}
	args = append(args, strings.Fields(os.Getenv("ARBOR_BENCH_ARGS"))...) // e.g. --kube-api-qps 500
	p := startProcess(b, "bench", body, args...)
	profiles := os.Getenv("ARBOR_BENCH_PROFILES")
	if profiles != "" {
		go saveProfile(b, p.url+"/debug/pprof/profile?seconds=60", filepath.Join(profiles, fmt.Sprintf("cpu-%d.pprof", n)))
	}
	want := n + 1
	deadline := time.Now().Add(15 * time.Minute)
	var timeline []string // ready environments every 10 s
	for next := 10 * time.Second; ; time.Sleep(500 * time.Millisecond) {
		ready := readyCount(p.environments(app))
		if time.Since(start) >= next {
			timeline = append(timeline, fmt.Sprintf("%s %d", next, ready))
			next += 10 * time.Second
		}
		if ready == want {
			break
		}
		p.mustRun()
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d ready after 15 minutes", ready, want)
		}
	}
	took := time.Since(start)
	b.Logf("ready over time: %s", strings.Join(timeline, ", "))
	b.ReportMetric(took.Seconds(), "s-to-all-ready")
	verbs := []string{"get", "list", "watch", "create", "update", "patch", "apply", "delete", "apply-dryrun", "patch-dryrun"}
	byVerb := func() []float64 {
		out := make([]float64, len(verbs))
		for i, v := range verbs {
			out[i], _ = p.metric(`arbor_api_requests_total{verb="` + v + `"}`) // a verb never sent has no series
		}
		return out
	}
	var sent []string
	total := 0.0
	for i, v := range byVerb() {
		if v > 0 {
			sent = append(sent, fmt.Sprintf("%v %s", v, verbs[i]))
			total += v
		}
	}
	b.Logf("requests sent to bring %d environments up: %s (%.1f per environment)", want, strings.Join(sent, ", "), total/float64(want))

	// no-op resyncs: each poll queues every environment; count requests sent meanwhile
	reconciles := func() float64 { return p.mustMetric(b, "arbor_reconcile_duration_seconds_count") }
	requests := func() float64 {
		watches, _ := p.metric(`arbor_api_requests_total{verb="watch"}`)
		return p.mustMetric(b, "arbor_api_requests_total") - watches
	}
	// Settling: after the last environment is ready, arbor still records each
	// one's fingerprints (one write per environment). Wait until a whole poll
	// interval passes with no write, then measure. (Not "no request": the
	// cluster's health check reads /readyz every few seconds.)
	writes := func() float64 {
		total := 0.0
		for i, v := range byVerb() {
			switch verbs[i] {
			case "create", "update", "patch", "apply", "delete":
				total += v
			}
		}
		return total
	}
	settleStart := time.Now()
	for last := writes(); ; {
		time.Sleep(6 * time.Second)
		p.mustRun()
		cur := writes()
		if cur == last || time.Since(settleStart) > 3*time.Minute {
			break
		}
		last = cur
	}
	b.Logf("settled %s after all were ready", time.Since(settleStart).Round(time.Second))
	v0 := byVerb()
	req0, rec0 := requests(), reconciles()
	rss := peakRSS(b, p.cmd.Process.Pid)
	p.resyncTwice(b, want)
	req1, rec1 := requests(), reconciles()
	v1 := byVerb()
	for i, v := range verbs {
		if d := v1[i] - v0[i]; d != 0 {
			b.Logf("during the no-op resyncs: %v %s requests", d, v)
		}
	}
	perResync := (req1 - req0) / ((rec1 - rec0) / float64(want))
	b.ReportMetric(perResync, "requests/resync")
	if r := peakRSS(b, p.cmd.Process.Pid); r > rss {
		rss = r
	}
	b.ReportMetric(rss, "peak-RSS-MiB")
	if profiles != "" {
		saveProfile(b, p.url+"/debug/pprof/heap", filepath.Join(profiles, fmt.Sprintf("heap-%d.pprof", n)))
	}
	b.ReportMetric(0, "ns/op")
	b.Logf("%d environments (5 objects each) from zero to ready in %s; %v reconciles of unchanged environments sent %v requests (%.1f per resync); peak RSS %.0f MiB",
		want, took.Round(100*time.Millisecond), rec1-rec0, req1-req0, perResync, rss)
	p.kill()
	if os.Getenv("ARBOR_BENCH_BASELINE") != "0" {
		base := benchBaseline(b, n, app+"-b0000")
		b.ReportMetric(took.Seconds()/base.Seconds(), "arbor/baseline")
		b.Logf("zero to ready: arbor %s for %d environments (from its start), a client-go apply loop %s for %d of the same: ratio %.2f",
			took.Round(100*time.Millisecond), want, base.Round(100*time.Millisecond), n, took.Seconds()/base.Seconds())
	}
}

// saveProfile fetches a runtime profile of the daemon (ARBOR_BENCH_PROFILES
// names the directory) for "go tool pprof".
func saveProfile(b *testing.B, url, path string) {
	resp, err := http.Get(url)
	if err != nil {
		b.Logf("profile %s: %v", url, err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(path, data, 0o644)
	}
	if err != nil {
		b.Logf("profile %s: %v", path, err)
		return
	}
	b.Logf("wrote %s", path)
}

func peakRSS(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return -1
}
