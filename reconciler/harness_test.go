package reconciler_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/internal/gittest"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/server"
)

// webApp is a one-service environment: Namespace, ConfigMap, Service,
// Deployment and Ingress — five objects.
const webApp = `services:
- name: web
  image: nginx:1.27-alpine
  ports:
  - {type: node_port, port: 80}
`

// ---- git ----------------------------------------------------------------

func gitCmd(dir string, args ...string) *exec.Cmd { return gittest.Command(dir, args...) }

func git(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	return gittest.Run(tb, dir, args...)
}

// repo is a working repository: commits happen here, and either arbor reads
// it in place or it pushes to a served bare repository.
type repo struct {
	tb  testing.TB
	dir string
}

func newRepo(tb testing.TB, releaseYAML string) *repo {
	tb.Helper()
	r := &repo{tb: tb, dir: tb.TempDir()}
	git(tb, r.dir, "init", "-q", "-b", "main")
	r.commit("first", map[string]string{".release.yaml": releaseYAML})
	return r
}

// commit writes files on the current branch and commits them; returns the commit.
func (r *repo) commit(msg string, files map[string]string) string {
	r.tb.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.tb.Fatal(err)
		}
	}
	git(r.tb, r.dir, "add", "-A")
	git(r.tb, r.dir, "commit", "-q", "--allow-empty", "-m", msg)
	return git(r.tb, r.dir, "rev-parse", "HEAD")
}

// on checks out branch, creating it from main when new.
func (r *repo) on(branch string) {
	r.tb.Helper()
	if err := exec.Command("git", "-C", r.dir, "rev-parse", "--verify", "-q", "refs/heads/"+branch).Run(); err != nil {
		git(r.tb, r.dir, "checkout", "-q", "-b", branch, "main")
		return
	}
	git(r.tb, r.dir, "checkout", "-q", branch)
}

func (r *repo) deleteBranch(branch string) {
	r.tb.Helper()
	git(r.tb, r.dir, "checkout", "-q", "main")
	git(r.tb, r.dir, "branch", "-q", "-D", branch)
}

// gitServer serves bare repositories over smart HTTP (git http-backend) with
// basic auth; Close stops it, so tests can take the server down.
type gitServer struct {
	*httptest.Server
	root       string
	user, pass string
	// stallFetches makes the server take every listing and fetch request
	// (service git-upload-pack) and never answer; pushes still work.
	stallFetches atomic.Bool
}

func newGitServer(tb testing.TB) *gitServer {
	tb.Helper()
	execPath := strings.TrimSpace(git(tb, "", "--exec-path"))
	s := &gitServer{root: tb.TempDir(), user: "arbor", pass: "s3cret-" + randHex(4)}
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		// REMOTE_USER: http-backend accepts pushes only from an authenticated user
		Env: []string{"GIT_PROJECT_ROOT=" + s.root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=/nonexistent", "REMOTE_USER=" + s.user},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || u != s.user || p != s.pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if s.stallFetches.Load() && (req.URL.Query().Get("service") == "git-upload-pack" || strings.HasSuffix(req.URL.Path, "/git-upload-pack")) {
			<-req.Context().Done()
			return
		}
		backend.ServeHTTP(w, req)
	}))
	tb.Cleanup(s.Close)
	return s
}

// serve makes a bare repository name.git from r and makes r push to it.
func (s *gitServer) serve(r *repo, name string) string {
	r.tb.Helper()
	bare := filepath.Join(s.root, name+".git")
	git(r.tb, "", "init", "-q", "--bare", "-b", "main", bare)
	git(r.tb, bare, "config", "http.receivepack", "true")
	authURL := strings.Replace(s.URL, "http://", fmt.Sprintf("http://%s:%s@", s.user, s.pass), 1) + "/" + name + ".git"
	git(r.tb, r.dir, "remote", "add", "origin", authURL)
	git(r.tb, r.dir, "push", "-q", "origin", "main")
	return s.URL + "/" + name + ".git"
}

func (r *repo) push(branch string) {
	r.tb.Helper()
	git(r.tb, r.dir, "push", "-q", "-f", "origin", branch)
}

func (r *repo) pushDelete(branch string) {
	r.tb.Helper()
	git(r.tb, r.dir, "push", "-q", "origin", "--delete", branch)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- the daemon, in process ----------------------------------------------

// daemon is arbor's reconciler running in the test process against the
// local cluster, leading without a lease.
type daemon struct {
	t       testing.TB
	rec     *reconciler.Reconciler
	reg     *prometheus.Registry
	srv     *httptest.Server
	cs      kubernetes.Interface
	cfg     *config.Config
	cancel  context.CancelFunc
	done    chan struct{}
	stopped sync.Once

	tokenOnce   sync.Once
	deployToken string
}

// appName is a fresh app name for a test: its namespaces are its own, and
// are deleted when the test ends.
func appName(t testing.TB) string {
	app := "t" + randHex(4)
	t.Cleanup(func() {
		cs := testcluster.Clientset(t)
		ctx := context.Background()
		l, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=arbor,arbor.dev/app=" + app})
		if err != nil {
			return
		}
		for _, ns := range l.Items {
			_ = cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		}
	})
	return app
}

// newConfig writes a daemon config for one app and loads it, as arbor run does.
func newConfig(t testing.TB, ns, body string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "arbor.yaml")
	if err := os.WriteFile(path, []byte(body+"\nnamespace: "+ns+"\nconcurrency: 8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startDaemon(t testing.TB, cfg *config.Config) *daemon {
	t.Helper()
	return startDaemonLog(t, cfg, testLogger(t))
}

// startDaemonLog is startDaemon with the daemon's logs sent to log.
func startDaemonLog(t testing.TB, cfg *config.Config, log *slog.Logger) *daemon {
	t.Helper()
	return startDaemonWith(t, cfg, log, nil)
}

// startDaemonWith is startDaemonLog with mod changing the reconciler's
// options first (a fake clock).
func startDaemonWith(t testing.TB, cfg *config.Config, log *slog.Logger, mod func(*reconciler.Options)) *daemon {
	t.Helper()
	restCfg := testcluster.Config(t)
	reg := prometheus.NewRegistry()
	m, err := reconciler.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	restCfg.Wrap(m.WrapTransport)
	ctx, cancel := context.WithCancel(context.Background())
	parts, err := reconciler.Wire(ctx, reconciler.WireOptions{
		Config: cfg, REST: restCfg, Registry: reg, Metrics: m, CacheDir: t.TempDir(),
		Log: log, WaitTimeout: time.Minute,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(restCfg)
	parts.Options.Kube = cs
	parts.Options.Metadata = metadata.NewForConfigOrDie(restCfg)
	parts.Options.RetryMax = 2 * time.Second
	if mod != nil {
		mod(&parts.Options)
	}
	rec, err := reconciler.New(parts.Options)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	d := &daemon{t: t, rec: rec, reg: reg, cs: cs, cfg: cfg, cancel: cancel, done: make(chan struct{})}
	d.srv = httptest.NewServer(server.New(server.Routes{
		Apps: func() any { return rec.Apps() },
		Environments: func(app string) (any, bool) {
			return rec.Environments(app), rec.HasApp(app)
		},
		Ready: rec.Ready, Metrics: rec.MetricsHandler(reg), Hooks: parts.Hooks,
		Deploy: func(ctx context.Context, app, env string) (any, error) {
			v, err := rec.RequestDeploy(ctx, app, env)
			if errors.Is(err, reconciler.ErrNoEnvironment) {
				err = fmt.Errorf("%w: %w", server.ErrNotFound, err)
			}
			return v, err
		},
		Guard:     (&server.Authorizer{Kube: cs, Namespace: cfg.Namespace}).Require,
		OpenReads: true, // the tests read status without a token
	}, server.Options{}))
	if err := rec.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(d.done)
		_ = rec.Lead(ctx)
	}()
	t.Cleanup(d.stop)
	return d
}

func (d *daemon) stop() {
	d.stopped.Do(func() {
		d.cancel()
		<-d.done
		d.srv.Close()
	})
}

// environments reads the status API.
func (d *daemon) environments(app string) []reconciler.EnvironmentStatus {
	d.t.Helper()
	var out []reconciler.EnvironmentStatus
	getJSON(d.t, d.srv.URL+"/api/v1/apps/"+app+"/environments", &out)
	return out
}

func (d *daemon) apps() []reconciler.AppStatus {
	d.t.Helper()
	var out []reconciler.AppStatus
	getJSON(d.t, d.srv.URL+"/api/v1/apps", &out)
	return out
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func (d *daemon) env(app, branch string) *reconciler.EnvironmentStatus {
	for _, e := range d.environments(app) {
		if e.Branch == branch {
			return &e
		}
	}
	return nil
}

// counter sums a counter metric's samples whose labels match.
func counter(t testing.TB, reg *prometheus.Registry, name string, match func(map[string]string) bool) float64 {
	t.Helper()
	v, _ := gather(t, reg, name, match)
	return v
}

// mustCounter is counter for a reading that must exist: it fails the test
// when no series matches, where counter would read 0.
func mustCounter(t testing.TB, reg *prometheus.Registry, name string, match func(map[string]string) bool) float64 {
	t.Helper()
	v, found := gather(t, reg, name, match)
	if !found {
		t.Fatalf("no series of %s matches", name)
	}
	return v
}

// gather sums the matching series of a metric and says whether any matched.
func gather(t testing.TB, reg *prometheus.Registry, name string, match func(map[string]string) bool) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if match == nil || match(labelsOf(m)) {
				found = true
				switch {
				case m.Counter != nil:
					sum += m.Counter.GetValue()
				case m.Gauge != nil:
					sum += m.Gauge.GetValue()
				case m.Histogram != nil:
					sum += float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return sum, found
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// eventually polls cond every 100ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReadyAt waits for app@branch to be Ready at commit.
func (d *daemon) waitReadyAt(app, branch, commit string, timeout time.Duration) *reconciler.EnvironmentStatus {
	d.t.Helper()
	var last *reconciler.EnvironmentStatus
	eventually(d.t, timeout, app+"@"+branch+" Ready at "+commit, func() bool {
		last = d.env(app, branch)
		return last != nil && last.Phase == reconciler.PhaseReady && last.Commit == commit
	})
	return last
}

// waitPhase waits for the environment of app@branch to reach phase.
func (d *daemon) waitPhase(app, branch, phase string, timeout time.Duration) *reconciler.EnvironmentStatus {
	d.t.Helper()
	var last *reconciler.EnvironmentStatus
	eventually(d.t, timeout, app+"@"+branch+" "+phase, func() bool {
		last = d.env(app, branch)
		return last != nil && last.Phase == phase
	})
	return last
}

// deploymentCommit returns the commit annotation of a Deployment, "" when absent.
func deploymentCommit(t testing.TB, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return d.Annotations["arbor.dev/commit"]
}

func namespaceGone(cs kubernetes.Interface, ns string) bool {
	_, err := cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	return apierrors.IsNotFound(err)
}

// testLogger sends the daemon's logs to the test log.
func testLogger(t testing.TB) *slog.Logger {
	lvl := slog.LevelInfo
	if _, bench := t.(*testing.B); bench {
		lvl = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: lvl}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// deploy posts a deploy request for app's env with a token allowed to deploy,
// and returns the response's status code.
func (d *daemon) deploy(app, env string) int {
	d.t.Helper()
	d.tokenOnce.Do(func() {
		d.deployToken = testcluster.ServiceAccountToken(d.t, d.cs, d.cfg.Namespace, "deployer", "deploy")
	})
	code, _ := postAction(d.t, d.srv.URL+"/api/v1/apps/"+app+"/environments/"+env+"/deploy", d.deployToken, nil)
	return code
}

// postAction posts to an action's URL with token (none when "") and extra
// headers, and returns the status code and body.
func postAction(t testing.TB, url, token string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
