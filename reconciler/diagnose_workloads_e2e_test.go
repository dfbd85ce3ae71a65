package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/diagnose"
	"github.com/arbordev/arbor/reconciler"
)

// brokenKustomize is a kustomize directory whose Deployment crash-loops
// and whose StatefulSet's image cannot be pulled (kwok's stages, by image:
// hack/kwok/stage-diagnostics.yaml). The Deployment selects its pods with
// a managed-by label of its own ("Helm", as charts write it), which arbor
// must leave alone.
var brokenKustomize = map[string]string{
	"k/kustomization.yaml": "resources: [cache.yaml, queue.yaml]\n",
	"k/cache.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: cache}
spec:
  replicas: 2
  selector:
    matchLabels: {app: cache, app.kubernetes.io/managed-by: Helm}
  template:
    metadata:
      labels: {app: cache, app.kubernetes.io/managed-by: Helm}
    spec:
      containers:
      - {name: redis, image: "arbor.test/crash-loop:1"}
`,
	"k/queue.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: queue}
spec:
  serviceName: queue
  replicas: 1
  selector:
    matchLabels: {app: queue}
  template:
    metadata:
      labels: {app: queue}
    spec:
      containers:
      - {name: broker, image: "arbor.test/image-pull:1"}
`,
}

// The workloads of a kustomize directory are diagnosed like arbor's own
// services: a crash-looping Deployment is named in status with its reason,
// exit code, restarts and last log lines, and a StatefulSet whose image
// cannot be pulled with the image; the metric's reason label stays one of
// diagnose.Reasons. The pods' template keeps its own labels.
func TestDiagnosticsOfKustomizeWorkloads(t *testing.T) {
	app := appName(t)
	r := newRepo(t, "kustomize:\n- path: k\n")
	r.commit("broken workloads", brokenKustomize)
	d := startDaemon(t, newConfig(t, "arbor-"+app, fmt.Sprintf("apps:\n- name: %s\n  repo: %s\n  poll_interval: 1h\n", app, r.dir)))

	var env *reconciler.EnvironmentStatus
	var crash, pull diagnose.Problem
	eventually(t, 90*time.Second, "the Deployment's crash loop (with its log) and the StatefulSet's image pull in status", func() bool {
		env = d.env(app, "main")
		if env == nil {
			return false
		}
		crash, pull = diagnose.Problem{}, diagnose.Problem{}
		for _, p := range env.Problems {
			switch {
			case p.Kind == diagnose.KindDeployment && p.Name == "cache" && p.Reason == diagnose.CrashLoopBackOff:
				crash = p
			case p.Kind == diagnose.KindStatefulSet && p.Name == "queue" && p.Reason == diagnose.ImagePullBackOff:
				pull = p
			}
		}
		return crash.Reason != "" && len(crash.Logs) > 0 && pull.Reason != ""
	})
	t.Logf("phase %s, problems: %+v", env.Phase, env.Problems)
	if crash.ExitCode == nil || *crash.ExitCode != 3 || crash.Restarts != 4 || crash.Container != "redis" {
		t.Errorf("crash loop: %+v", crash)
	}
	checkLastLines(t, "the Deployment's crash loop", crash.Logs)
	if pull.Image != "arbor.test/image-pull:1" || pull.Pod != "queue-0" {
		t.Errorf("image pull: %+v", pull)
	}
	for _, p := range env.Problems {
		known := false
		for _, reason := range diagnose.Reasons {
			known = known || p.Reason == reason
		}
		if !known {
			t.Errorf("problem with a reason outside diagnose.Reasons: %+v", p)
		}
	}
	resp, err := http.Get(d.srv.URL + "/metrics") // recomputes the gauge
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := mustCounter(t, d.reg, "arbor_environment_problems", func(l map[string]string) bool {
		return l["app"] == app && l["reason"] == string(diagnose.CrashLoopBackOff)
	}); v != 1 {
		t.Errorf("arbor_environment_problems{reason=CrashLoopBackOff} = %v, want 1", v)
	}

	dep, err := d.cs.AppsV1().Deployments(env.Namespace).Get(context.Background(), "cache", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := dep.Spec.Template.Labels; l["app.kubernetes.io/managed-by"] != "Helm" || l["app"] != "cache" || l["arbor.dev/env"] == "" {
		t.Errorf("the Deployment's pod labels %v: want its own (managed-by Helm) and arbor's env label", l)
	}
}

// crashChart is a local Helm chart whose Deployment crash-loops; it writes
// Helm's managed-by label into its selector, as some charts do.
var crashChart = map[string]string{
	".release.yaml":     "charts:\n- name: cache\n  directory: chart\n",
	"chart/Chart.yaml":  "apiVersion: v2\nname: cache\nversion: 0.1.0\n",
	"chart/values.yaml": "replicas: 1\n",
	"chart/templates/cache.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-cache
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: cache, app.kubernetes.io/managed-by: {{ .Release.Service }}}
  template:
    metadata:
      labels: {app: cache, app.kubernetes.io/managed-by: {{ .Release.Service }}}
    spec:
      containers:
      - {name: redis, image: "arbor.test/crash-loop:1"}
`,
}

// A Helm chart's crash-looping Deployment is named in status by its own
// name, with the reason and exit code, while the environment deploys.
func TestDiagnosticsOfChartWorkloads(t *testing.T) {
	app := appName(t)
	r := newRepo(t, webApp)
	r.commit("a chart that crash-loops", crashChart)
	d := startDaemon(t, newConfig(t, "arbor-"+app, fmt.Sprintf("apps:\n- name: %s\n  repo: %s\n  poll_interval: 1h\n", app, r.dir)))
	var crash diagnose.Problem
	eventually(t, 90*time.Second, "the chart Deployment's crash loop in status", func() bool {
		env := d.env(app, "main")
		if env == nil {
			return false
		}
		for _, p := range env.Problems {
			if p.Kind == diagnose.KindDeployment && strings.HasSuffix(p.Name, "-cache") && p.Reason == diagnose.CrashLoopBackOff {
				crash = p
				return true
			}
		}
		return false
	})
	if crash.ExitCode == nil || *crash.ExitCode != 3 || crash.Container != "redis" {
		t.Errorf("crash loop: %+v", crash)
	}
	t.Logf("problem: %s", crash.Short())
}
