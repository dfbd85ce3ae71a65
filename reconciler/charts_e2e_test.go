package reconciler_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/internal/testcluster"
)

// hookChart is a local chart with a pre-install hook Job that must complete
// before the chart's Deployment is applied.
var hookChart = map[string]string{
	".release.yaml": `charts:
- name: site
  directory: chart
`,
	"chart/Chart.yaml":  "apiVersion: v2\nname: site\nversion: 0.1.0\n",
	"chart/values.yaml": "greeting: hello\n",
	"chart/templates/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
`,
	"chart/templates/migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: busybox:1.36, command: [sh, -c, "echo {{ .Values.greeting }}"]}]
`,
}

// TestDaemonDeploysLocalChart: the daemon renders a branch's local Helm
// chart and deploys it through its engine: the pre-install hook Job runs to
// completion before the chart's Deployment is created, and the environment
// becomes Ready.
func TestDaemonDeploysLocalChart(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, "")
	c := r.commit("chart", hookChart)
	d := startDaemon(t, newConfig(t, own, "apps:\n- {name: "+app+", repo: "+r.dir+", poll_interval: 1s}\ndefaults: {domain: test.local}\n"))
	env := d.waitReadyAt(app, "main", c, 120*time.Second)
	ctx := context.Background()
	deps, err := cs.AppsV1().Deployments(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil || len(deps.Items) != 1 {
		t.Fatalf("the chart's Deployment: %v, %v", deps, err)
	}
	jobs, err := cs.BatchV1().Jobs(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil || len(jobs.Items) != 1 {
		t.Fatalf("the hook Job: %v, %v", jobs, err)
	}
	job, dep := jobs.Items[0], deps.Items[0]
	if job.Status.Succeeded == 0 || job.Status.CompletionTime == nil {
		t.Fatalf("the hook Job did not complete: %+v", job.Status)
	}
	if dep.CreationTimestamp.Time.Before(job.Status.CompletionTime.Time) {
		t.Errorf("the Deployment was created at %s, before the pre-install hook completed at %s", dep.CreationTimestamp, job.Status.CompletionTime)
	}
}
