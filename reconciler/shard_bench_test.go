package reconciler_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/testcluster"
)

// quiet is a testing.TB whose Logf drops the replicas' logs (a benchmark
// prints every line it logs).
type quiet struct{ testing.TB }

func (quiet) Logf(string, ...any) {}

// BenchmarkTakeover measures, with two `arbor run` binaries splitting six
// apps (lease duration 3s, renew deadline 2s, retry period 500ms), how soon
// the apps of a replica that goes away are acted on again by the other: in
// each iteration the replica with the most apps is killed with SIGKILL and
// a commit pushed to each of its apps, then (restarted and settled) it is
// stopped with SIGTERM and the same again. "Acted on" is the survivor's
// first write into one of those apps' namespaces, seen by the counting
// proxy in front of it; the victim's last renewal is its last write to its
// own Lease before the kill, seen by its proxy. Reported: p50 and p99 of
// kill→first action, last renewal→first action, and SIGTERM→first action.
func BenchmarkTakeover(b *testing.B) {
	const nApps = 6
	cs := testcluster.Clientset(b)
	own := testcluster.Namespace(b, cs)
	var body strings.Builder
	body.WriteString("apps:\n")
	apps := make([]string, nApps)
	repos := map[string]*repo{}
	for i := range apps {
		apps[i] = appName(b)
		repos[apps[i]] = newRepo(b, webApp)
		fmt.Fprintf(&body, "- {name: %s, repo: %s, poll_interval: 1h}\n", apps[i], repos[apps[i]].dir)
	}
	body.WriteString("namespace: " + own + "\nconcurrency: 4\n")
	log := &writeLog{}
	q := quiet{b}
	start := func(name string) *process {
		return startProcess(q, name, body.String(), "--kubeconfig", countingProxy(b, name, log))
	}
	replicas := map[string]*process{"replica-a": start("replica-a"), "replica-b": start("replica-b")}
	owners := map[string]string{}
	settle := func() map[string][]string {
		eventually(b, 180*time.Second, "one owner per app, agreed by both replicas", func() bool {
			return agreedOwners(b, replicas, apps, owners)
		})
		share := map[string][]string{}
		for app, o := range owners {
			share[o] = append(share[o], app)
		}
		return share
	}
	settle()
	waitAllReady(b, replicas["replica-a"], apps, nil)

	// firstAction is when survivor first wrote into one of apps'
	// namespaces after since; lastRenewal the end of victim's last write to
	// its Lease before since.
	firstAction := func(survivor string, apps []string, since time.Time) time.Time {
		var first time.Time
		eventually(b, 60*time.Second, survivor+" acting on the apps taken over", func() bool {
			log.mu.Lock()
			defer log.mu.Unlock()
			for _, w := range log.writes {
				if w.replica == survivor && w.start.After(since) && slices.Contains(apps, strings.TrimSuffix(namespaceOf(w.path), "-main")) && (first.IsZero() || w.start.Before(first)) {
					first = w.start
				}
			}
			return !first.IsZero()
		})
		return first
	}
	lastRenewal := func(victim string, before time.Time) time.Time {
		log.mu.Lock()
		defer log.mu.Unlock()
		var last time.Time
		for _, w := range log.writes {
			if w.replica == victim && strings.HasSuffix(w.path, "/leases/arbor-replica-"+victim) && w.end.Before(before) && w.end.After(last) {
				last = w.end
			}
		}
		return last
	}
	// away stops the replica with the most apps with sig, pushes a commit
	// to each of its apps, and returns when the survivor acted on one, the
	// moment of the signal and the victim's last renewal before it.
	away := func(sig syscall.Signal, round int) (signalled, renewed, acted time.Time) {
		share := settle()
		victim, survivor := "replica-a", "replica-b"
		if len(share[survivor]) > len(share[victim]) {
			victim, survivor = survivor, victim
		}
		p := replicas[victim]
		signalled = time.Now()
		_ = p.cmd.Process.Signal(sig)
		for _, app := range share[victim] {
			repos[app].commit(fmt.Sprintf("%s %d", sig, round), map[string]string{"v.txt": fmt.Sprint(round, sig)})
		}
		acted = firstAction(survivor, share[victim], signalled)
		<-p.done
		renewed = lastRenewal(victim, signalled)
		if renewed.IsZero() {
			b.Fatalf("no renewal of %s's Lease recorded", victim)
		}
		replicas[victim] = start(victim)
		return signalled, renewed, acted
	}

	var killToAct, renewToAct, termToAct []time.Duration
	b.ResetTimer()
	for i := range b.N {
		killed, renewed, acted := away(syscall.SIGKILL, i)
		killToAct = append(killToAct, acted.Sub(killed))
		renewToAct = append(renewToAct, acted.Sub(renewed))
		termed, _, acted := away(syscall.SIGTERM, i)
		termToAct = append(termToAct, acted.Sub(termed))
	}
	b.StopTimer()
	b.ReportMetric(3, "lease-s")
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"kill-to-act", killToAct}, {"renewal-to-act", renewToAct}, {"sigterm-to-act", termToAct}} {
		b.ReportMetric(percentile(m.d, 50).Seconds(), m.name+"-p50-s")
		b.ReportMetric(percentile(m.d, 99).Seconds(), m.name+"-p99-s")
	}
	b.Logf("kill→act %v; last renewal→act %v; SIGTERM→act %v", killToAct, renewToAct, termToAct)
}

// percentile is the p-th percentile of d (nearest rank).
func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (p*len(s) + 99) / 100
	return s[max(i-1, 0)]
}
