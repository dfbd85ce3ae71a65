package workflow

import (
	"context"
	"testing"
	"testing/fstest"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// TestTeardownRunsDeleteHooks: a chart's pre-delete hook Job runs, to
// completion, when the environment's teardown starts.
func TestTeardownRunsDeleteHooks(t *testing.T) {
	h := newHarness(t)
	tree := fstest.MapFS{
		".release.yaml":           {Data: []byte("charts:\n- name: site\n  directory: chart\nworkflows:\n- name: teardown\n  parallelize:\n  - {step: site, tasks: [charts.site]}\n")},
		"chart/Chart.yaml":        {Data: []byte("apiVersion: v2\nname: site\nversion: 0.1.0\n")},
		"chart/values.yaml":       {Data: []byte("{}\n")},
		"chart/templates/cm.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: site}\ndata: {a: b}\n")},
		"chart/templates/backup.yaml": {Data: []byte(`apiVersion: batch/v1
kind: Job
metadata:
  name: backup
  annotations: {helm.sh/hook: pre-delete}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: backup, image: busybox:1.36, command: [sh, -c, "echo backing up"]}]
`)},
	}
	cfg, findings, err := schema.Load(tree, schema.DefaultConfigFile, schema.LoadOptions{})
	if err != nil || findings.HasErrors() {
		t.Fatalf("load: %v %v", err, findings)
	}
	env, err := render.Render(render.Input{Config: cfg, Tree: tree, Context: render.Context{App: h.app, Branch: "main", Commit: "c1", DefaultBranch: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	h.cleanup(env.Namespace)
	ctx := context.Background()
	if _, err := h.x.Run(ctx, Run{Env: env, Stage: render.StageSetup}); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if _, err := h.kube.BatchV1().Jobs(env.Namespace).Get(ctx, "backup", metav1.GetOptions{}); err == nil {
		t.Fatal("the pre-delete hook ran at setup")
	}
	res, err := h.x.Run(ctx, Run{Env: env, Stage: render.StageTeardown})
	if err != nil || len(res.Progress.Warnings) > 0 {
		t.Fatalf("teardown: %v %v", err, res.Progress.Warnings)
	}
	job, err := h.kube.BatchV1().Jobs(env.Namespace).Get(ctx, "backup", metav1.GetOptions{})
	if err != nil || job.Status.Succeeded == 0 {
		t.Fatalf("the pre-delete hook Job after teardown: %v, %+v", err, job.Status)
	}
}
