package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/arbordev/arbor/internal/gittest"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/workflow"
)

const expiringApp = `tracking_branch: main
environment_templates:
- name: ephemeral
  expires_after: 72h
services:
- name: web
  image: web:1
`

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines.
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

// TestEnvCommandsAgainstDaemon runs `arbor run` in-process on the real
// cluster and drives it with `arbor env`: list and get (which need a token
// allowed list/get), extend (refused without the extend verb, naming it),
// logs of the last workflow and of a build that never ran (404), deploy, and
// delete — after which the branch's environment stays deleted until its
// next push, which creates it again.
func TestEnvCommandsAgainstDaemon(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := testcluster.Name("ecli")
	ctx := context.Background()
	t.Cleanup(func() {
		list, _ := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: render.LabelApp + "=" + app})
		for _, ns := range list.Items {
			_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
		}
	})

	repo := t.TempDir()
	gittest.Run(t, repo, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(repo, ".release.yaml"), []byte(expiringApp), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Run(t, repo, "add", "-A")
	gittest.Run(t, repo, "commit", "-q", "-m", "app")
	gittest.Run(t, repo, "branch", "feature/x")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wake, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, wakeAddr := ln.Addr().String(), wake.Addr().String()
	ln.Close()
	wake.Close()
	cfg := filepath.Join(t.TempDir(), "arbor.yaml")
	body := fmt.Sprintf("apps:\n- name: %s\n  repo: %s\n  poll_interval: 1s\n  max_extension: 240h\ndefaults: {domain: test.local}\nnamespace: %s\nserver: {listen: %q, wake_listen: %q}\n", app, repo, own, addr, wakeAddr)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cache := t.TempDir()
	// start runs the daemon until the returned func stops it.
	start := func() func() {
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			root := newRootCmd()
			root.SetArgs([]string{"run", "--config", cfg, "--kubeconfig", testcluster.KubeconfigPath(t),
				"--cache-dir", cache, "--identity", app, "--lease-duration", "3s", "--lease-renew-deadline", "2s", "--lease-retry-period", "500ms"})
			root.SetErr(logs)
			root.SetOut(logs)
			done <- root.ExecuteContext(dctx)
		}()
		var once sync.Once
		return func() { once.Do(func() { cancel(); <-done }) }
	}
	stop := start()
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.b.String())
		}
	})
	server := "http://" + addr

	viewer := testcluster.ServiceAccountToken(t, cs, own, "viewer", "list", "get")
	operator := testcluster.ServiceAccountToken(t, cs, own, "operator", "list", "get", "deploy", "extend", "delete", "logs")
	env := func(token string, args ...string) (string, error) {
		var out bytes.Buffer
		root := newRootCmd()
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"env", "--server", server, "--token", token}, args...))
		err := root.ExecuteContext(ctx)
		return out.String(), err
	}
	get := func(branch string) (reconciler.EnvironmentStatus, error) {
		var e reconciler.EnvironmentStatus
		out, err := env(viewer, "get", app, branch, "-o", "json")
		if err != nil {
			return e, err
		}
		return e, json.Unmarshal([]byte(out), &e)
	}
	waitFor := func(what string, timeout time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	waitFor("feature/x Ready", 120*time.Second, func() bool {
		e, err := get("feature/x")
		return err == nil && e.Phase == reconciler.PhaseReady
	})

	// reads need a token
	if out, err := env("", "list", app); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("list without a token: %v\n%s", err, out)
	}
	out, err := env(viewer, "list", app)
	if err != nil || !strings.Contains(out, "feature/x") || !strings.Contains(out, "Ready") || !strings.HasPrefix(out, "APP") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = env(viewer, "list", "-o", "wide")
	if err != nil || !strings.Contains(out, "NAMESPACE") || !strings.Contains(out, app+"-") {
		t.Errorf("list -o wide: %v\n%s", err, out)
	}
	t.Logf("arbor env list -o wide:\n%s", out)
	out, err = env(viewer, "get", app, "feature/x", "-o", "yaml")
	var y map[string]any
	if err != nil || yaml.Unmarshal([]byte(out), &y) != nil || y["branch"] != "feature/x" {
		t.Errorf("get -o yaml: %v\n%s", err, out)
	}
	before, err := get("feature/x")
	if err != nil || before.ExpiresAt.IsZero() {
		t.Fatalf("get: %v %+v: want an expiry", err, before)
	}

	// extend: 403 naming the verb, then allowed; bounded by max_extension
	if out, err := env(viewer, "extend", app, "feature/x", "200h"); err == nil || !strings.Contains(err.Error(), "verbs [extend]") {
		t.Errorf("extend without the verb: %v\n%s", err, out)
	}
	if out, err := env(operator, "extend", app, "feature/x", "300h"); err == nil || !strings.Contains(err.Error(), "max_extension") {
		t.Errorf("extend beyond max_extension: %v\n%s", err, out)
	}
	if out, err := env(operator, "extend", app, "feature/x", "200h"); err != nil {
		t.Fatalf("extend: %v\n%s", err, out)
	}
	waitFor("the later expiry in status", 30*time.Second, func() bool {
		e, err := get("feature/x")
		return err == nil && e.ExpiresAt.After(time.Now().Add(199*time.Hour))
	})

	// logs
	if out, err := env(operator, "logs", app, "feature/x", "workflow"); err != nil || !strings.Contains(out, "setup: succeeded") || !strings.Contains(out, "services.web") {
		t.Errorf("workflow logs: %v\n%s", err, out)
	}
	if out, err := env(operator, "logs", app, "feature/x", "build"); err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "no image of a built service") {
		t.Errorf("build logs: %v\n%s", err, out)
	}
	if out, err := env(viewer, "logs", app, "feature/x", "workflow"); err == nil || !strings.Contains(err.Error(), "verbs [logs]") {
		t.Errorf("logs without the verb: %v\n%s", err, out)
	}

	// a service's pod logs, served by kwok from the lines given
	pods, err := cs.CoreV1().Pods(before.Namespace).List(ctx, metav1.ListOptions{LabelSelector: render.LabelService + "=web"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("the web pod: %v %d", err, len(pods.Items))
	}
	pod := pods.Items[0]
	logFile := testcluster.PodLogs(t, pod.Namespace, pod.Name, []string{pod.Spec.Containers[0].Name}, "line 1", "line 2", "line 3", "line 4", "line 5")
	waitFor("the web pod's logs", 30*time.Second, func() bool {
		out, err := env(operator, "logs", app, "feature/x", "service/web", "--tail", "2")
		return err == nil && out == "line 4\nline 5\n"
	})
	if out, err := env(operator, "logs", app, "feature/x", "service/web", "--limit-bytes", "9"); err != nil || out != "line 1\nli" {
		t.Errorf("logs --limit-bytes 9: %v %q", err, out)
	}
	if out, err := env(operator, "logs", app, "feature/x", "service/nope"); err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "no pods") {
		t.Errorf("logs of no service: %v\n%s", err, out)
	}

	// followed: what the container logs later arrives while the command runs
	fctx, fcancel := context.WithCancel(ctx)
	followed := &syncBuffer{}
	fdone := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetOut(followed)
		root.SetErr(followed)
		root.SetArgs([]string{"env", "--server", server, "--token", operator, "logs", app, "feature/x", "service/web", "-f", "--tail", "1"})
		fdone <- root.ExecuteContext(fctx)
	}()
	waitFor("the followed log's last line", 30*time.Second, func() bool { return followed.String() == "line 5\n" })
	testcluster.AppendPodLog(t, logFile, "line 6")
	waitFor("a line appended to the followed log", 30*time.Second, func() bool { return followed.String() == "line 5\nline 6\n" })
	fcancel()
	<-fdone

	// the daemon found through a port-forward to the arbor Service in its namespace
	portForwardToDaemon(t, cs, own, addr)
	t.Setenv(envServer, "")
	var pf bytes.Buffer
	root := newRootCmd()
	root.SetOut(&pf)
	root.SetErr(&pf)
	root.SetArgs([]string{"env", "--kubeconfig", testcluster.KubeconfigPath(t), "--arbor-namespace", own, "--token", viewer, "list", app})
	if err := root.ExecuteContext(ctx); err != nil || !strings.Contains(pf.String(), "feature/x") {
		t.Errorf("list through a port-forward: %v\n%s", err, pf.String())
	}

	// pause and resume: the operator here lacks both verbs
	for _, verb := range []string{"pause", "resume"} {
		if out, err := env(operator, verb, app, "feature/x"); err == nil || !strings.Contains(err.Error(), "verbs ["+verb+"]") {
			t.Errorf("%s without the verb: %v\n%s", verb, err, out)
		}
	}

	// with the verbs, a user pauses and resumes
	pauser := testcluster.ServiceAccountToken(t, cs, own, "pauser", "list", "get", "pause", "resume")
	if out, err := env(pauser, "pause", app, "feature/x"); err != nil {
		t.Fatalf("pause: %v\n%s", err, out)
	}
	waitFor("feature/x Paused", 60*time.Second, func() bool {
		e, err := get("feature/x")
		return err == nil && e.Phase == reconciler.PhasePaused && e.Paused
	})
	if out, err := env(pauser, "resume", app, "feature/x"); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	waitFor("feature/x Ready again", 60*time.Second, func() bool {
		e, err := get("feature/x")
		return err == nil && e.Phase == reconciler.PhaseReady && !e.Paused
	})

	// deploy
	if out, err := env(operator, "deploy", app, "feature/x"); err != nil || !strings.Contains(out, "deploy of") {
		t.Errorf("deploy: %v\n%s", err, out)
	}

	// delete: gone, and not created again until a push
	if out, err := env(viewer, "delete", app, "feature/x"); err == nil || !strings.Contains(err.Error(), "verbs [delete]") {
		t.Errorf("delete without the verb: %v\n%s", err, out)
	}
	if out, err := env(operator, "delete", app, "missing"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("delete of no environment: %v\n%s", err, out)
	}
	if out, err := env(operator, "delete", app, "feature/x"); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	waitFor("feature/x Deleted and its namespace gone or going", 60*time.Second, func() bool {
		e, err := get("feature/x")
		if err != nil || e.Phase != reconciler.PhaseDeleted {
			return false
		}
		ns, err := cs.CoreV1().Namespaces().Get(ctx, before.Namespace, metav1.GetOptions{})
		return err != nil || ns.DeletionTimestamp != nil
	})
	time.Sleep(4 * time.Second) // four polls
	if e, err := get("feature/x"); err != nil || e.Phase != reconciler.PhaseDeleted {
		t.Fatalf("after a few listings: %v %+v, want it still Deleted", err, e)
	}
	if ns, err := cs.CoreV1().Namespaces().Get(ctx, before.Namespace, metav1.GetOptions{}); err == nil && ns.DeletionTimestamp == nil {
		t.Fatalf("namespace %s came back before a push: %v", ns.Name, ns.Annotations[workflow.AnnotationDeleteRequested])
	}
	// a restarted daemon (a new leader) remembers the deletion: from the Lease
	stop()
	stop = start()
	waitFor("the restarted daemon serving", 60*time.Second, func() bool {
		_, err := env(viewer, "list", app)
		return err == nil
	})
	waitFor("feature/x Deleted after the restart", 60*time.Second, func() bool {
		e, err := get("feature/x")
		return err == nil && e.Phase == reconciler.PhaseDeleted
	})
	time.Sleep(3 * time.Second) // three polls of the new leader
	if ns, err := cs.CoreV1().Namespaces().Get(ctx, before.Namespace, metav1.GetOptions{}); err == nil && ns.DeletionTimestamp == nil {
		t.Fatalf("namespace %s came back after a restart, before a push", ns.Name)
	}
	gittest.Run(t, repo, "checkout", "-q", "feature/x")
	gittest.Run(t, repo, "commit", "-q", "--allow-empty", "-m", "push again")
	head := strings.TrimSpace(gittest.Run(t, repo, "rev-parse", "HEAD"))
	waitFor("feature/x Ready again after a push", 120*time.Second, func() bool {
		e, err := get("feature/x")
		return err == nil && e.Phase == reconciler.PhaseReady && e.Commit == head
	})
}

// portForwardToDaemon gives arbor's namespace what `arbor env` looks for
// without --server: the Service arbor and a ready pod behind it, whose port
// forwards (through kwok) to the daemon's address.
func portForwardToDaemon(t *testing.T, cs kubernetes.Interface, ns, addr string) {
	t.Helper()
	ctx := context.Background()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	target, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	sel := map[string]string{"app.kubernetes.io/name": "arbor"}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "arbor"},
		Spec:       corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "arbor-0", Labels: sel},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "arbor", Image: "arbor:test",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.PodPortForward(t, ns, "arbor-0", 8080, host, int32(target))
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "arbor-0", metav1.GetOptions{})
		if err == nil && readyPod([]corev1.Pod{*p}) != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/arbor-0 not ready: %v", ns, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
