package reconciler_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// Three replicas (binaries) and 30 apps: the replicas split the apps among
// themselves with their Leases, every app owned by exactly one and every
// environment Ready; the third replica joins while commits keep coming on
// every app and takes its share from the live two. The owner of some apps killed
// with SIGKILL → its apps
// are taken over by the others and a commit pushed to each while it is
// gone is deployed; no namespace is re-created; and, from every write each
// replica sent (counted by a proxy in front of each), no environment was
// ever written by two replicas in turn and back (A, B, A) or by two at once.
func TestShardedReplicas(t *testing.T) {
	const nApps = 30
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	var body strings.Builder
	body.WriteString("apps:\n")
	apps := make([]string, nApps)
	repos := map[string]*repo{}
	for i := range apps {
		apps[i] = appName(t)
		repos[apps[i]] = newRepo(t, webApp)
		fmt.Fprintf(&body, "- {name: %s, repo: %s, poll_interval: 1h}\n", apps[i], repos[apps[i]].dir)
	}
	body.WriteString("namespace: " + own + "\nconcurrency: 4\n")
	log := &writeLog{}
	defer log.check(t, apps) // also when a step below fails: what was written by whom
	replicas := map[string]*process{}
	for _, name := range []string{"replica-a", "replica-b"} {
		replicas[name] = startProcess(t, name, body.String(), "--kubeconfig", countingProxy(t, name, log))
	}

	// Every app has one owner, the same as seen from every replica, and
	// every environment is Ready (read from any replica: the records).
	owners := map[string]string{}
	eventually(t, 180*time.Second, "one owner per app, agreed by every replica", func() bool {
		return agreedOwners(t, replicas, apps, owners)
	})
	waitAllReady(t, replicas["replica-b"], apps, nil)

	// A third replica joins while every app has a new commit to deploy: it
	// takes its share from the two live ones, which stop first.
	pushAll := func(msg string, which []string) map[string]string {
		out := map[string]string{}
		for _, app := range which {
			out[app] = repos[app].commit(msg, map[string]string{"v.txt": msg})
		}
		return out
	}
	// Commits keep coming on every app while the third replica joins, so
	// that the old owners are busy writing when the handover happens.
	stopPushing, pushed := make(chan struct{}), make(chan map[string]string)
	go func() {
		last := map[string]string{}
		for round := 0; ; round++ {
			select {
			case <-stopPushing:
				pushed <- last
				return
			default:
			}
			maps.Copy(last, pushAll(fmt.Sprintf("round %d", round), apps))
		}
	}()
	replicas["replica-c"] = startProcess(t, "replica-c", body.String(), "--kubeconfig", countingProxy(t, "replica-c", log))
	eventually(t, 120*time.Second, "replica-c owning apps, agreed by every replica", func() bool {
		return agreedOwners(t, replicas, apps, owners) && slices.Contains(slices.Collect(maps.Values(owners)), "replica-c")
	})
	close(stopPushing)
	commits := <-pushed
	waitAllReady(t, replicas["replica-a"], apps, commits)
	commits = pushAll("with three replicas", apps)
	waitAllReady(t, replicas["replica-c"], apps, commits)
	share := map[string][]string{}
	for app, o := range owners {
		share[o] = append(share[o], app)
	}
	t.Logf("shares: a %d, b %d, c %d", len(share["replica-a"]), len(share["replica-b"]), len(share["replica-c"]))
	uids := namespaceUIDs(t, apps)

	// Kill the replica with the most apps; push to each of its apps.
	victim := "replica-a"
	for name := range replicas {
		if len(share[name]) > len(share[victim]) {
			victim = name
		}
	}
	if len(share[victim]) == 0 {
		t.Fatal("no replica owns an app: nothing to take over")
	}
	replicas[victim].kill()
	killed := time.Now()
	log.mu.Lock()
	log.victim, log.killedAt = victim, killed
	log.mu.Unlock()
	delete(replicas, victim)
	commits = pushAll("after the kill", share[victim])
	eventually(t, 120*time.Second, "the dead replica's apps owned by the others", func() bool {
		return agreedOwners(t, replicas, apps, owners)
	})
	t.Logf("the %d apps of %s taken over %s after its kill (lease duration 3s, retry period 500ms)", len(share[victim]), victim, time.Since(killed).Round(100*time.Millisecond))
	for app, c := range commits {
		eventually(t, 120*time.Second, app+" Ready at the commit pushed after the kill", func() bool {
			for _, e := range replicas[owners[app]].environments(app) {
				if e.Branch == "main" && e.Phase == reconciler.PhaseReady && e.Commit == c {
					return true
				}
			}
			return false
		})
	}
	for app, uid := range namespaceUIDs(t, apps) {
		if uids[app] != uid {
			t.Errorf("%s: namespace re-created (uid %s → %s)", app, uids[app], uid)
		}
	}
}

// waitAllReady waits until every app's main is Ready, at commits[app] when
// given, as p's status API shows it.
func waitAllReady(t testing.TB, p *process, apps []string, commits map[string]string) {
	t.Helper()
	eventually(t, 180*time.Second, "every app's main Ready", func() bool {
		for _, app := range apps {
			ok := false
			for _, e := range p.environments(app) {
				ok = ok || (e.Branch == "main" && e.Phase == reconciler.PhaseReady && (commits == nil || e.Commit == commits[app]))
			}
			if !ok {
				return false
			}
		}
		return true
	})
}

// agreedOwners reads every replica's /api/v1/apps: true when each app has
// exactly one replica acting on it (not standby) and every replica names
// that one as its owner; owners is filled.
func agreedOwners(t testing.TB, replicas map[string]*process, apps []string, owners map[string]string) bool {
	acting := map[string][]string{}
	named := map[string]map[string]bool{}
	for name, p := range replicas {
		var st []reconciler.AppStatus
		getJSON(t, p.url+"/api/v1/apps", &st)
		for _, a := range st {
			if !a.Standby {
				acting[a.Name] = append(acting[a.Name], name)
			}
			if named[a.Name] == nil {
				named[a.Name] = map[string]bool{}
			}
			named[a.Name][a.Owner] = true
		}
	}
	for _, app := range apps {
		if len(acting[app]) != 1 || len(named[app]) != 1 || !named[app][acting[app][0]] {
			return false
		}
	}
	for _, app := range apps {
		owners[app] = acting[app][0]
	}
	return true
}

func namespaceUIDs(t *testing.T, apps []string) map[string]types.UID {
	cs := testcluster.Clientset(t)
	out := map[string]types.UID{}
	for _, app := range apps {
		ns, err := cs.CoreV1().Namespaces().Get(context.Background(), app+"-main", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("namespace %s-main: %v", app, err)
		}
		out[app] = ns.UID
	}
	return out
}

// write is one write request a replica sent to the API server.
type write struct {
	replica, method, path string
	start, end            time.Time
}

// writeLog collects the writes of every replica.
type writeLog struct {
	mu     sync.Mutex
	writes []write
	// victim was killed at killedAt: the apps it held may go back to
	// whoever held them before it.
	victim   string
	killedAt time.Time
}

// countingProxy serves the test cluster's API to one replica on loopback,
// recording every write it sends, and returns a kubeconfig for it.
func countingProxy(t testing.TB, replica string, log *writeLog) string {
	t.Helper()
	rp := testcluster.Proxy(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			rp.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rp.ServeHTTP(w, r)
		log.mu.Lock()
		log.writes = append(log.writes, write{replica: replica, method: r.Method, path: r.URL.Path, start: start, end: time.Now()})
		log.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["proxy"] = &clientcmdapi.Cluster{Server: srv.URL}
	kc.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	kc.CurrentContext = "proxy"
	path := filepath.Join(t.TempDir(), replica+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// namespaceOf is the namespace a write's path names (the namespace itself
// for a write of a Namespace), "" for other cluster-scoped paths.
func namespaceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		if p == "namespaces" && i+1 < len(parts) {
			return parts[i+1]
		}
	}
	return ""
}

// check fails t unless every app's environment was written by one replica
// at a time: the replicas that wrote to it, in order, form runs that never
// come back (no A, B, A) unless B is the replica killed and A's return
// follows the kill, and a run starts only after the previous run's last
// write has ended. It fails too when the log holds no write of an
// environment: then it could not have found anything.
func (l *writeLog) check(t *testing.T, apps []string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	byNS := map[string][]write{}
	for _, w := range l.writes {
		byNS[namespaceOf(w.path)] = append(byNS[namespaceOf(w.path)], w)
	}
	handovers := 0
	for _, app := range apps {
		ws := byNS[app+"-main"]
		if len(ws) == 0 {
			t.Errorf("%s-main: no write recorded; the proxies see nothing", app)
			continue
		}
		sort.Slice(ws, func(i, j int) bool { return ws[i].start.Before(ws[j].start) })
		done := map[string]bool{}
		cur := ws[0].replica
		lastEnd := ws[0].end
		for _, w := range ws[1:] {
			if w.replica == cur {
				lastEnd = maxTime(lastEnd, w.end)
				continue
			}
			if done[w.replica] && (cur != l.victim || w.start.Before(l.killedAt)) {
				t.Errorf("%s-main: %s wrote again (%s %s) after %s had taken over", app, w.replica, w.method, w.path, cur)
			}
			if w.start.Before(lastEnd) {
				t.Errorf("%s-main: %s began %s %s while %s's write was still running", app, w.replica, w.method, w.path, cur)
			}
			done[cur] = true
			cur, lastEnd = w.replica, w.end
			handovers++
		}
	}
	t.Logf("%d writes recorded; %d handovers between replicas over %d environments", len(l.writes), handovers, len(apps))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
