package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/arbordev/arbor/internal/browser"
	"github.com/arbordev/arbor/internal/testcluster"
)

// TestDaemonRunsAsServiceAccount runs `arbor run` itself, authenticated only
// by the ServiceAccount's token, against a real git repository made from
// examples/kustomized with two branches: both environments become Ready and
// show on the status page; deleting a branch deletes its environment; SIGTERM
// stops the daemon cleanly.
func TestDaemonRunsAsServiceAccount(t *testing.T) {
	adminCfg := testcluster.Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	admin := newClient(t, adminCfg)
	install(t, ctx, admin, dirInstall)
	kubeconfig, arborCfg := serviceAccountKubeconfig(t, ctx, admin, adminCfg)
	waitInForce(t, ctx, newClient(t, arborCfg))

	dir := t.TempDir()
	bin := buildArbor(t, ctx, dir)
	app := testcluster.Name("kz")
	repo := exampleRepo(t, ctx, filepath.Join(dir, "repo"), app)
	addr, wakeAddr := freeAddr(t), freeAddr(t)
	config := filepath.Join(dir, "arbor.yaml")
	writeFile(t, config, fmt.Sprintf(`apps:
- name: %s
  repo: %s
  poll_interval: 2s
defaults: {domain: preview.localhost}
server: {listen: %q, anonymous_read: true, wake_listen: %q}
namespace: %s
`, app, repo, addr, wakeAddr, namespace))
	t.Cleanup(func() { deleteAppNamespaces(admin, app) })

	d := startDaemon(t, ctx, bin, "run", "--config", config, "--kubeconfig", kubeconfig,
		"--cache-dir", filepath.Join(dir, "cache"), "--identity", app, "--log-format", "json")
	base := "http://" + addr

	// Both branches become Ready environments.
	envs := waitEnvironments(t, ctx, d, base, app, func(envs []apiEnvironment) bool {
		return len(envs) == 2 && envs[0].Phase == "Ready" && envs[1].Phase == "Ready"
	})
	for _, e := range envs {
		if _, err := admin.cs.CoreV1().Namespaces().Get(ctx, e.Namespace, metav1.GetOptions{}); err != nil {
			t.Errorf("environment %s: namespace %s: %v", e.Branch, e.Namespace, err)
		}
	}

	// With exactly deploy/'s permissions, nothing arbor tried was refused.
	if logs := d.logs(); strings.Contains(strings.ToLower(logs), "forbidden") {
		t.Errorf("the daemon was refused something as the ServiceAccount:\n%s", logs)
	}

	// The status page shows them (and a browser renders it: testoutput/daemon-statuspage.png).
	page := httpGet(t, ctx, base+"/")
	for _, e := range envs {
		for _, want := range []string{e.Branch, e.Namespace} {
			if !strings.Contains(page, want) {
				t.Errorf("the status page lacks %q", want)
			}
		}
	}
	screenshot(t, base+"/", "daemon-statuspage.png")

	// The logs action works with exactly deploy/'s permissions.
	for _, e := range envs {
		if e.Branch == "main" {
			checkLogsAsServiceAccount(t, ctx, admin, d, base, app, e.Branch, e.Namespace)
		}
	}
	pauseAndWake(t, ctx, admin, d, base, "http://"+wakeAddr, app, envs)

	// Deleting a branch deletes its environment.
	git(t, ctx, repo, "branch", "-D", "feature/login")
	var gone string
	for _, e := range envs {
		if e.Branch == "feature/login" {
			gone = e.Namespace
		}
	}
	waitEnvironments(t, ctx, d, base, app, func(envs []apiEnvironment) bool {
		return len(envs) == 1 && envs[0].Branch == "main"
	})
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := admin.cs.CoreV1().Namespaces().Get(ctx, gone, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("namespace %s of the deleted branch still exists\n%s", gone, d.logs())
	}
	d.stop(t)
}

// pauseAndWake pauses main's environment with the request the API records
// (written here as admin), checks that the daemon paused it with deploy/'s
// permissions (its waking route in place), then wakes it with a request for
// its host at the waking endpoint of the running binary.
func pauseAndWake(t *testing.T, ctx context.Context, admin *client, d *daemon, base, wake, app string, envs []apiEnvironment) {
	t.Helper()
	ns := ""
	for _, e := range envs {
		if e.Branch == "main" {
			ns = e.Namespace
		}
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"arbor.dev/pause-requested":"pause %s"}}}`, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := admin.cs.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	mainIs := func(phase string) func([]apiEnvironment) bool {
		return func(envs []apiEnvironment) bool {
			for _, e := range envs {
				if e.Branch == "main" {
					return e.Phase == phase
				}
			}
			return false
		}
	}
	waitEnvironments(t, ctx, d, base, app, mainIs("Paused"))
	if _, err := admin.cs.DiscoveryV1().EndpointSlices(ns).Get(ctx, "arbor-wake", metav1.GetOptions{}); err != nil {
		t.Fatalf("the paused environment's waking route: %v\n%s", err, d.logs())
	}
	ings, err := admin.cs.NetworkingV1().Ingresses(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(ings.Items) == 0 || len(ings.Items[0].Spec.Rules) == 0 {
		t.Fatalf("the paused environment's Ingress: %v %v", ings, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, wake+"/", nil)
	req.Host = ings.Items[0].Spec.Rules[0].Host
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "Waking up") {
		t.Fatalf("the waking endpoint for %s: %s %s", req.Host, res.Status, body)
	}
	waitEnvironments(t, ctx, d, base, app, mainIs("Ready"))
	if logs := d.logs(); strings.Contains(strings.ToLower(logs), "forbidden") {
		t.Errorf("the daemon was refused something while pausing or waking:\n%s", logs)
	}
}

// deleteAppNamespaces deletes, as admin, every namespace of app that is left.
func deleteAppNamespaces(admin *client, app string) {
	ctx := context.Background()
	list, err := admin.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "arbor.dev/app=" + app})
	if err != nil {
		return
	}
	for _, ns := range list.Items {
		_ = admin.cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
	}
}

// apiEnvironment is the part of /api/v1/apps/{app}/environments the test reads.
type apiEnvironment struct {
	Branch    string `json:"branch"`
	Namespace string `json:"namespace"`
	Phase     string `json:"phase"`
	LastError string `json:"lastError"`
}

func waitEnvironments(t *testing.T, ctx context.Context, d *daemon, base, app string, done func([]apiEnvironment) bool) []apiEnvironment {
	t.Helper()
	var envs []apiEnvironment
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := d.exited(); err != nil {
			return false, err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/apps/"+app+"/environments", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		last = string(body)
		envs = nil
		if res.StatusCode != http.StatusOK || json.Unmarshal(body, &envs) != nil {
			return false, nil
		}
		return done(envs), nil
	})
	if err != nil {
		t.Fatalf("environments of %s not as expected: %v; last answer: %s\ndaemon log:\n%s", app, err, last, d.logs())
	}
	return envs
}

// buildArbor builds cmd/arbor the way `make build` does.
func buildArbor(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "arbor")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "../cmd/arbor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/arbor: %v\n%s", err, out)
	}
	return bin
}

// exampleRepo makes a git repository from examples/kustomized with branches
// main and feature/login, the app renamed to app so that its namespaces are the test's own.
func exampleRepo(t *testing.T, ctx context.Context, dir, app string) string {
	t.Helper()
	src := "../examples/kustomized"
	err := filepath.WalkDir(src, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if rel == ".release.yaml" {
			data = bytes.Replace(data, []byte("app: kustomized"), []byte("app: "+app), 1)
		}
		writeFile(t, filepath.Join(dir, rel), string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	git(t, ctx, dir, "init", "-q", "-b", "main")
	git(t, ctx, dir, "add", "-A")
	git(t, ctx, dir, "commit", "-q", "-m", "kustomized example")
	git(t, ctx, dir, "branch", "feature/login")
	return dir
}

func git(t *testing.T, ctx context.Context, dir string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir, "-c", "user.name=arbor-test", "-c", "user.email=test@arbor.invalid"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpGet(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, res.Status, body)
	}
	return string(body)
}

// daemon is a running `arbor run` process.
type daemon struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func startDaemon(t *testing.T, ctx context.Context, bin string, args ...string) *daemon {
	t.Helper()
	d := &daemon{out: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.logs())
		}
	})
	return d
}

// exited returns an error when the daemon is no longer running.
func (d *daemon) exited() error {
	select {
	case <-d.done:
		return fmt.Errorf("arbor run exited: %v", d.err)
	default:
		return nil
	}
}

// stop sends SIGTERM and expects a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		if d.err != nil {
			t.Errorf("arbor run after SIGTERM: %v\n%s", d.err, d.logs())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("arbor run did not stop within 30s of SIGTERM")
	}
}

func (d *daemon) logs() string { return d.out.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// screenshot keeps a browser's picture of url in testoutput/name.
func screenshot(t *testing.T, url, name string) {
	t.Helper()
	browser.Screenshot(t, url, name)
}
