package reconciler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/workflow"
)

// TestListingTimeoutDeletesNothing serves an app over HTTP, then makes the
// server take listings and never answer, and deletes the branch behind the
// daemon's back: every listing times out after git_timeout, the error is in
// the app's status, and the environment stays. Once the server answers
// again the daemon sees the branch gone and deletes it, as it should.
func TestListingTimeoutDeletesNothing(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	srv := newGitServer(t)
	r := newRepo(t, webApp)
	url := srv.serve(r, app)
	dir := t.TempDir()
	writeSecret(t, dir, "user", srv.user)
	writeSecret(t, dir, "pass", srv.pass)
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+url+"\n  poll_interval: 1s\n  git_timeout: 1s\n"+
		"  auth: {username_file: "+dir+"/user, password_file: "+dir+"/pass}\n")
	d := startDaemon(t, cfg)
	r.on("feature/slow")
	c := r.commit("slow", nil)
	r.push("feature/slow")
	ns := d.waitReadyAt(app, "feature/slow", c, 60*time.Second).Namespace

	srv.stallFetches.Store(true)
	r.pushDelete("feature/slow")
	before := counter(t, d.reg, "arbor_listing_errors_total", nil)
	eventually(t, 60*time.Second, "two listings timed out", func() bool {
		return counter(t, d.reg, "arbor_listing_errors_total", nil) >= before+2
	})
	if e := d.apps()[0].ListingError; !strings.Contains(e, "git timeout: no complete answer within 1s") {
		t.Errorf("listing error %q: want the git timeout named", e)
	}
	if namespaceGone(cs, ns) || d.env(app, "feature/slow") == nil {
		t.Fatal("environment deleted after listings that timed out")
	}

	srv.stallFetches.Store(false)
	eventually(t, 90*time.Second, "namespace "+ns+" deleted once the listing works", func() bool { return namespaceGone(cs, ns) })
}

// privilegedPod is a kustomize directory with one pod that baseline forbids.
var privilegedPod = map[string]string{
	"k/kustomization.yaml": "resources: [pod.yaml]\n",
	"k/pod.yaml": `apiVersion: v1
kind: Pod
metadata: {name: root}
spec:
  containers:
  - name: c
    image: busybox:1.36
    securityContext: {privileged: true}
    volumeMounts: [{name: host, mountPath: /host}]
  volumes:
  - name: host
    hostPath: {path: /}
`,
}

// TestPodSecurityBaseline deploys a branch holding a privileged pod with a
// hostPath volume. Under the default pod_security (baseline) the API server
// refuses the pod in the environment's namespace, and the status names the
// pod and the API server's reason; an app configured privileged runs it.
func TestPodSecurityBaseline(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	strict, loose := appName(t), appName(t)
	r := newRepo(t, "kustomize:\n- path: k\n")
	r.commit("a privileged pod", privilegedPod)
	cfg := newConfig(t, own, "apps:\n- name: "+strict+"\n  repo: "+r.dir+"\n  poll_interval: 1h\n"+
		"- name: "+loose+"\n  repo: "+r.dir+"\n  poll_interval: 1h\n  pod_security: privileged\n")
	d := startDaemon(t, cfg)

	st := d.waitPhase(strict, "main", reconciler.PhaseFailed, 60*time.Second)
	for _, want := range []string{"Pod/" + st.Namespace + "/root", `violates PodSecurity "baseline:latest"`, "privileged", "hostPath volumes"} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("status error %q lacks %q", st.LastError, want)
		}
	}
	nsObj, err := cs.CoreV1().Namespaces().Get(context.Background(), st.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := nsObj.Labels["pod-security.kubernetes.io/enforce"]; got != "baseline" {
		t.Errorf("namespace %s: enforce label %q, want baseline (labels %v)", st.Namespace, got, nsObj.Labels)
	}
	if _, err := cs.CoreV1().Pods(st.Namespace).Get(context.Background(), "root", metav1.GetOptions{}); err == nil {
		t.Error("the privileged pod exists in the baseline namespace")
	}

	ok := d.waitPhase(loose, "main", reconciler.PhaseReady, 60*time.Second)
	if _, err := cs.CoreV1().Pods(ok.Namespace).Get(context.Background(), "root", metav1.GetOptions{}); err != nil {
		t.Errorf("the app configured privileged did not get its pod: %v", err)
	}
	nsObj, err = cs.CoreV1().Namespaces().Get(context.Background(), ok.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := nsObj.Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
		t.Errorf("namespace %s: enforce label %q, want privileged", ok.Namespace, got)
	}
}

// TestPodSecurityRestrictedNamesTheDeployment deploys a plain service (its
// container runs as the image's user, with the default capabilities) for
// an app configured restricted: the Deployment is accepted, the API server
// refuses its pods, and the service's task fails at once, its reason naming
// the Deployment and the API server's reason, instead of waiting out the
// readiness timeout (a minute here) with "0 of 1 replicas updated".
func TestPodSecurityRestrictedNamesTheDeployment(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, webApp)
	c := git(t, r.dir, "rev-parse", "HEAD")
	cfg := newConfig(t, own, "apps:\n- name: "+app+"\n  repo: "+r.dir+"\n  poll_interval: 1h\n  pod_security: restricted\n")
	d := startDaemon(t, cfg)
	st := d.waitReadyAt(app, "main", c, 50*time.Second)
	if st.Workflow == nil {
		t.Fatalf("no workflow in status %+v", st)
	}
	task, ok := st.Workflow.Task("", "services.web")
	if !ok || task.State != workflow.TaskFailed {
		t.Fatalf("services.web: %+v, want failed (workflow %+v)", task, st.Workflow)
	}
	for _, want := range []string{"Deployment/" + st.Namespace + "/web: its pods are refused", `violates PodSecurity "restricted:latest"`, "runAsNonRoot"} {
		if !strings.Contains(task.Reason, want) {
			t.Errorf("services.web failed with %q, which lacks %q", task.Reason, want)
		}
	}
}
