package reconciler_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

var (
	buildOnce sync.Once
	arborBin  string
	buildErr  error
)

// binary builds cmd/arbor once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "arbor-bin")
		if err != nil {
			buildErr = err
			return
		}
		arborBin = filepath.Join(dir, "arbor")
		out, err := exec.Command("go", "build", "-o", arborBin, "github.com/arbordev/arbor/cmd/arbor").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return arborBin
}

// process is `arbor run` as a subprocess.
type process struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// startProcess runs arbor with the config body (server.listen is added).
func startProcess(t testing.TB, name, body string, extra ...string) *process {
	t.Helper()
	return startProcessServer(t, name, body, "", extra...)
}

// startProcessServer is startProcess with more of the config's server
// section (YAML flow-map entries, like "webhook_secret_file: F").
func startProcessServer(t testing.TB, name, body, server string, extra ...string) *process {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "arbor.yaml")
	if server != "" {
		server = ", " + server
	}
	server += ", wake_listen: \"127.0.0.1:" + freePort(t) + "\"" // replicas side by side: each its own
	if err := os.WriteFile(cfgPath, []byte(body+"\nserver: {listen: \"127.0.0.1:"+port+"\", anonymous_read: true"+server+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "run", "--config", cfgPath, "--kubeconfig", testcluster.KubeconfigPath(t),
		"--cache-dir", filepath.Join(dir, "cache"), "--identity", name,
		"--lease-duration", "3s", "--lease-renew-deadline", "2s", "--lease-retry-period", "500ms")
	cmd.Args = append(cmd.Args, extra...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, name: name, cmd: cmd, url: "http://127.0.0.1:" + port, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("[%s] %s", name, sc.Text())
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	eventually(t, 30*time.Second, name+" serving /healthz", func() bool {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	return p
}

// mustRun fails the test when the process has exited.
func (p *process) mustRun() {
	select {
	case <-p.done:
		p.t.Fatalf("arbor exited: %v", p.cmd.ProcessState)
	default:
	}
}

// kill sends SIGKILL: no defer, no lease release, no cleanup.
func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *process) environments(app string) []reconciler.EnvironmentStatus {
	var out []reconciler.EnvironmentStatus
	getJSON(p.t, p.url+"/api/v1/apps/"+app+"/environments", &out)
	return out
}

// metric sums the series of /metrics that start with series (a name, or
// name{labels} as Prometheus prints it). ok is false when /metrics cannot be
// read or no series matches: a missing series is not a zero.
func (p *process) metric(series string) (v float64, ok bool) {
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var sum float64
	found := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, series+" ") || strings.HasPrefix(line, series+"{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
			found = true
		}
	}
	return sum, found && sc.Err() == nil
}

// mustMetric is metric for a series that must exist.
func (p *process) mustMetric(t testing.TB, series string) float64 {
	t.Helper()
	v, ok := p.metric(series)
	if !ok {
		t.Fatalf("%s: no series %s in /metrics", p.url, series)
	}
	return v
}

// writes sums the write requests a process sent (the lease's client is not
// counted). A verb the process never sent has no series and counts 0, but
// the request counter itself must be there, or every reading would be 0.
func (p *process) writes(t *testing.T) float64 {
	t.Helper()
	if _, ok := p.metric("arbor_api_requests_total"); !ok {
		t.Fatalf("%s exports no arbor_api_requests_total: its writes cannot be counted", p.url)
	}
	var sum float64
	for _, v := range []string{"create", "update", "patch", "apply", "delete"} {
		n, _ := p.metric(`arbor_api_requests_total{verb="` + v + `"}`)
		sum += n
	}
	return sum
}

// leading reads arbor_leader: 1 or 0, and false when it cannot be read.
func (p *process) leading() (bool, bool) {
	v, ok := p.metric("arbor_leader")
	return v == 1, ok
}

func readyCount(envs []reconciler.EnvironmentStatus) int {
	n := 0
	for _, e := range envs {
		if e.Phase == reconciler.PhaseReady {
			n++
		}
	}
	return n
}

// arbor killed with SIGKILL in the middle of creating environments, two
// branches deleted while it is down, and restarted: it converges, and no
// object arbor created is left outside a live environment's inventory.
func TestKilledMidApplyConverges(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	branches := []string{"b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"}
	for _, b := range branches {
		r.on(b)
		r.commit(b, nil)
	}
	body := "apps:\n- name: " + app + "\n  repo: " + r.dir + "\n  poll_interval: 1s\nnamespace: " + own + "\nconcurrency: 2\n"
	p := startProcess(t, "first", body)
	ctx := context.Background()
	eventually(t, 60*time.Second, "the first namespaces created", func() bool {
		l, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "arbor.dev/app=" + app})
		return err == nil && len(l.Items) >= 2
	})
	p.kill()
	l, _ := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "arbor.dev/app=" + app})
	t.Logf("killed with %d of %d namespaces created", len(l.Items), len(branches)+1)
	r.deleteBranch("b1")
	r.deleteBranch("b2")

	p = startProcess(t, "second", body)
	want := len(branches) - 2 + 1
	eventually(t, 120*time.Second, "every remaining environment ready", func() bool {
		return readyCount(p.environments(app)) == want && len(p.environments(app)) == want
	})
	eventually(t, 90*time.Second, "exactly the live namespaces", func() bool {
		l, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "arbor.dev/app=" + app})
		if err != nil {
			return false
		}
		n := 0
		for _, ns := range l.Items {
			if ns.DeletionTimestamp == nil {
				n++
			}
		}
		return n == want && len(l.Items) == want
	})
	checkNoOrphans(t, app, p.environments(app))
}

// checkNoOrphans lists every object of the app's environments carrying
// arbor's labels and checks that each is in its environment's inventory.
func checkNoOrphans(t *testing.T, app string, envs []reconciler.EnvironmentStatus) {
	t.Helper()
	dyn := dynamic.NewForConfigOrDie(testcluster.Config(t))
	cs := testcluster.Clientset(t)
	ctx := context.Background()
	inventories := map[string]map[string]bool{}
	for _, e := range envs {
		cm, err := cs.CoreV1().ConfigMaps(e.Namespace).Get(ctx, "arbor-environment", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: record: %v", e.Namespace, err)
		}
		var refs []struct{ Group, Kind, Namespace, Name string }
		if err := json.Unmarshal([]byte(cm.Data["inventory"]), &refs); err != nil {
			t.Fatalf("%s: inventory: %v", e.Namespace, err)
		}
		inv := map[string]bool{}
		for _, r := range refs {
			inv[r.Kind+"/"+r.Namespace+"/"+r.Name] = true
		}
		inventories[e.Namespace] = inv
	}
	gvrs := []schema.GroupVersionResource{
		{Version: "v1", Resource: "configmaps"}, {Version: "v1", Resource: "services"},
		{Group: "apps", Version: "v1", Resource: "deployments"}, {Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	}
	if len(envs) == 0 {
		t.Fatal("no environments to check for orphans")
	}
	total, seen := 0, map[string]int{}
	for _, gvr := range gvrs {
		list, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=arbor,arbor.dev/app=" + app})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			if o.GetName() == "arbor-environment" {
				continue
			}
			total++
			seen[o.GetNamespace()]++
			inv, ok := inventories[o.GetNamespace()]
			if !ok {
				t.Errorf("orphan: %s/%s/%s is in no live environment", o.GetKind(), o.GetNamespace(), o.GetName())
				continue
			}
			found := inv[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()]
			if !found {
				t.Errorf("orphan: %s/%s/%s is not in its environment's inventory", o.GetKind(), o.GetNamespace(), o.GetName())
			}
		}
	}
	// The selector must find each environment's own objects, or the loop
	// above checked nothing and would pass whatever is left behind.
	for ns := range inventories {
		if seen[ns] == 0 {
			t.Errorf("%s: the selector found none of its objects; orphans could not have been seen", ns)
		}
	}
	t.Logf("%d objects of %d environments, all in an inventory", total, len(envs))
}

// Two replicas: only the lease holder writes; the standby serves status from
// the records in the cluster; when the leader is killed, the standby takes
// over and acts.
func TestTwoReplicasOnlyLeaderActs(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	body := "apps:\n- name: " + app + "\n  repo: " + r.dir + "\n  poll_interval: 1s\nnamespace: " + own + "\n"
	leader, standby := leaderOf(t, app, startProcess(t, "replica-a", body), startProcess(t, "replica-b", body))
	eventually(t, 60*time.Second, "main ready", func() bool { return readyCount(leader.environments(app)) == 1 })
	// (main may have been created by the replica that came up first, before
	// the app's owner was live: count from here.)
	before, leaderBefore := standby.writes(t), leader.writes(t)
	r.on("feature/two")
	c := r.commit("two", nil)
	eventually(t, 60*time.Second, "feature/two ready (seen from the standby)", func() bool {
		for _, e := range standby.environments(app) {
			if e.Branch == "feature/two" && e.Phase == reconciler.PhaseReady && e.Commit == c {
				return true
			}
		}
		return false
	})
	time.Sleep(2 * time.Second)
	if leader.writes(t) == leaderBefore {
		t.Fatal("the leader created feature/two, yet its write count did not move: the comparison below could not fail")
	}
	if after := standby.writes(t); after != before {
		t.Errorf("the standby sent %v write requests while the leader acted", after-before)
	}
	var apps []reconciler.AppStatus
	getJSON(t, standby.url+"/api/v1/apps", &apps)
	if !apps[0].Standby {
		t.Errorf("standby's status does not say standby: %+v", apps[0])
	}

	leader.kill()
	eventually(t, 30*time.Second, "the standby leading", func() bool { l, ok := standby.leading(); return ok && l })
	r.on("feature/three")
	c3 := r.commit("three", nil)
	eventually(t, 60*time.Second, "feature/three ready by the new leader", func() bool {
		for _, e := range standby.environments(app) {
			if e.Branch == "feature/three" && e.Phase == reconciler.PhaseReady && e.Commit == c3 {
				return true
			}
		}
		return false
	})
}

// leaderOf waits until exactly one of a and b leads, and returns the leader
// and the standby.
func leaderOf(t *testing.T, app string, a, b *process) (leader, standby *process) {
	t.Helper()
	// The first replica up may act on app alone for a moment, until it
	// sees the second, which may win app: wait for the one that keeps it.
	winner := reconciler.OwnerOf(app, []string{a.name, b.name})
	eventually(t, 30*time.Second, "one leader, "+winner+", app's owner once both are live", func() bool {
		la, okA := a.leading()
		lb, okB := b.leading()
		switch {
		case !okA || !okB:
			return false
		case la && !lb:
			leader, standby = a, b
		case lb && !la:
			leader, standby = b, a
		default:
			return false
		}
		return leader.name == winner
	})
	return leader, standby
}
