package deploy

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/state"
)

// everyKind is a .release.yaml whose environment holds every kind arbor
// renders, plus a kustomize directory with a StatefulSet and a NetworkPolicy.
const everyKind = `
app: rbac
domain: preview.example.com
service_accounts:
- name: web
services:
- name: web
  image: nginx:1.27-alpine
  service_account_name: web
  ports:
  - {type: node_port, port: 80}
  volumes:
  - {name: data, type: persistent, mount_path: /data}
  autoscale: {min_replicas: 1, max_replicas: 3, metrics: [{resource: cpu, target: 80}]}
  configmap:
  - {name: site, mount_path: /usr/share/nginx/html, repo_path: site}
jobs:
- name: migrate
  from_services: web
  command: ["true"]
cron_jobs:
- name: nightly
  from_services: web
  command: ["true"]
  schedule: "0 3 * * *"
kustomize:
- path: deploy
environment_variables:
  defaults:
  - {key: LOG_LEVEL, value: VERSION}
  services:
    web:
    - {key: DB_PASSWORD, secret: true}
`

const kustomizeDir = `
resources: [db.yaml, netpol.yaml]
`

const kustomizeDB = `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: "postgres:17"}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {arbor.dev/service: web}}}]}]
`

// renderEnv renders the environment of branch at commit; version changes the
// configuration, withCron false drops the CronJob (so that a prune has work).
func renderEnv(t *testing.T, branch, commit, version string, withCron bool) *render.Environment {
	t.Helper()
	tmpl := strings.ReplaceAll(everyKind, "VERSION", version)
	if !withCron {
		i := strings.Index(tmpl, "cron_jobs:")
		j := strings.Index(tmpl, "kustomize:")
		tmpl = tmpl[:i] + tmpl[j:]
	}
	tree := fstest.MapFS{
		".release.yaml":             {Data: []byte(tmpl)},
		"site/index.html":           {Data: []byte("<h1>" + version + "</h1>")},
		"deploy/kustomization.yaml": {Data: []byte(kustomizeDir)},
		"deploy/db.yaml":            {Data: []byte(kustomizeDB[:strings.Index(kustomizeDB, "---")])},
		"deploy/netpol.yaml":        {Data: []byte(kustomizeDB[strings.Index(kustomizeDB, "---")+4:])},
	}
	cfg, findings, err := schema.Load(tree, schema.DefaultConfigFile, schema.LoadOptions{})
	if err != nil || findings.HasErrors() {
		t.Fatalf("load the test template: %v %v", err, findings)
	}
	env, err := render.Render(render.Input{Config: cfg, Tree: tree, Context: render.Context{
		App: "rbac", Branch: branch, Commit: commit, Install: namespace, // as the daemon of deploy/ labels it
		Secrets: map[string]string{"DB_PASSWORD": "not-a-real-password"},
	}})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	// As the daemon does: arbor reads this namespace's Secrets through a
	// RoleBinding it applies there first (reconciler/secretaccess.go).
	rb := apply.SecretReaderBinding(env.Namespace, namespace, saName, managed(env.Namespace))
	env.Objects = append([]*unstructured.Unstructured{env.Objects[0], rb}, env.Objects[1:]...)
	return env
}

// TestEngineRunsEnvironmentAsServiceAccount drives the real apply engine with
// only the ServiceAccount's token: an environment with every kind arbor renders
// is created, waited for, recorded, updated, pruned and deleted.
func TestEngineRunsEnvironmentAsServiceAccount(t *testing.T) {
	adminCfg := testcluster.Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	admin := newClient(t, adminCfg)
	install(t, ctx, admin, dirInstall)
	_, arborCfg := serviceAccountKubeconfig(t, ctx, admin, adminCfg)
	arbor := newClient(t, arborCfg)
	waitInForce(t, ctx, arbor)
	engine, err := apply.New(arborCfg, apply.Options{ProtectedNamespaces: []string{namespace}})
	if err != nil {
		t.Fatal(err)
	}

	branch := testcluster.Name("feature/rbac")
	v1 := renderEnv(t, branch, strings.Repeat("1", 40), "one", true)
	ns := v1.Namespace
	t.Cleanup(func() { _ = admin.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	wantKinds := []string{"Namespace", "RoleBinding", "ServiceAccount", "ConfigMap", "Secret", "PersistentVolumeClaim", "Service",
		"Deployment", "HorizontalPodAutoscaler", "Job", "CronJob", "Ingress", "StatefulSet", "NetworkPolicy"}
	checkKinds(t, v1.Objects, wantKinds)

	// Without a default StorageClass (older test clusters) nothing provisions
	// the PVC: give it a volume to bind, so that the pods using it schedule.
	if !hasDefaultStorageClass(t, ctx, admin) {
		providePV(t, ctx, admin, ns, "web-data")
	}

	// Create.
	cs, err := engine.Apply(ctx, v1.Objects, apply.ApplyOptions{Namespace: ns})
	if err != nil {
		t.Fatalf("as arbor, apply the environment: %v", err)
	}
	if n := cs.Count(apply.Created); n != len(v1.Objects) {
		t.Errorf("as arbor, created %d of %d objects", n, len(v1.Objects))
	}
	if err := engine.Wait(ctx, v1.Objects, apply.WaitOptions{Namespace: ns, Timeout: 3 * time.Minute}); err != nil {
		t.Fatalf("as arbor, wait for the environment: %v\n%s", err, podReport(ctx, admin, ns))
	}
	rec := &state.State{Install: namespace, App: "rbac", Branch: branch, Commit: v1.Commit, ConfigHash: v1.ConfigHash, Workflow: "setup", Outcome: state.OutcomeSucceeded, Inventory: inventory(v1.Objects)}
	if err := state.Write(ctx, arbor.cs, ns, rec); err != nil {
		t.Fatalf("as arbor, write the environment's record: %v", err)
	}

	// Diff and update: a new commit and configuration, without the CronJob.
	v2 := renderEnv(t, branch, strings.Repeat("2", 40), "two", false)
	diff, err := engine.Diff(ctx, v2.Objects, apply.ApplyOptions{Namespace: ns})
	if err != nil || !diff.Changed() {
		t.Fatalf("as arbor, diff the update: changed=%v, %v", diff.Changed(), err)
	}
	cs, err = engine.Apply(ctx, v2.Objects, apply.ApplyOptions{Namespace: ns})
	if err != nil {
		t.Fatalf("as arbor, apply the update: %v", err)
	}
	if cs.Count(apply.Configured)+cs.Count(apply.Created)+cs.Count(apply.Recreated) == 0 {
		t.Error("as arbor, the update changed nothing")
	}
	pruned, err := engine.Prune(ctx, rec.Inventory, v2.Objects, apply.ApplyOptions{Namespace: ns})
	if err != nil {
		t.Fatalf("as arbor, prune: %v", err)
	}
	if pruned.Count(apply.Deleted) == 0 {
		t.Errorf("as arbor, prune deleted nothing (the CronJob and the old Job should go): %+v", pruned.Changes)
	}
	if _, err := arbor.cs.BatchV1().CronJobs(ns).Get(ctx, "nightly", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("CronJob nightly after prune: %v, want NotFound", err)
	}
	rec.Commit, rec.Inventory = v2.Commit, inventory(v2.Objects)
	if err := state.Write(ctx, arbor.cs, ns, rec); err != nil {
		t.Fatalf("as arbor, update the record: %v", err)
	}
	if got, err := state.Read(ctx, arbor.cs, ns); err != nil || got.Commit != v2.Commit {
		t.Fatalf("as arbor, read the record back: %+v, %v", got, err)
	}

	// Delete the environment.
	del, err := engine.Delete(ctx, append(rec.Inventory, state.Ref(ns)), apply.DeleteOptions{Namespace: ns, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatalf("as arbor, delete the environment: %v (%d deleted)", err, del.Count(apply.Deleted))
	}
	if _, err := admin.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after Delete: %v, want NotFound", ns, err)
	}
}

func inventory(objs []*unstructured.Unstructured) apply.Inventory {
	inv := make(apply.Inventory, 0, len(objs))
	for _, o := range objs {
		inv = append(inv, apply.RefOf(o))
	}
	return inv
}

// checkKinds fails t unless objs hold every kind of want, each labelled as arbor's.
func checkKinds(t *testing.T, objs []*unstructured.Unstructured, want []string) {
	t.Helper()
	have := map[string]bool{}
	for _, o := range objs {
		have[o.GetKind()] = true
		if o.GetLabels()[apply.LabelManagedBy] != apply.ManagedByValue {
			t.Errorf("rendered %s/%s lacks the managed-by label", o.GetKind(), o.GetName())
		}
	}
	for _, k := range want {
		if !have[k] {
			t.Errorf("the rendered environment has no %s (has %v)", k, kinds(objs))
		}
	}
}

// hasDefaultStorageClass reports whether a StorageClass is marked default.
func hasDefaultStorageClass(t *testing.T, ctx context.Context, admin *client) bool {
	t.Helper()
	list, err := admin.cs.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list StorageClasses: %v", err)
	}
	for _, sc := range list.Items {
		if sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
			return true
		}
	}
	return false
}

// providePV creates a PersistentVolume reserved for the claim ns/claim, and
// removes it when the test ends.
func providePV(t *testing.T, ctx context.Context, admin *client, ns, claim string) {
	t.Helper()
	pv := obj("v1", "PersistentVolume", "", "pv-"+ns, nil, map[string]any{"spec": map[string]any{
		"capacity":                      map[string]any{"storage": "10Gi"},
		"accessModes":                   []any{"ReadWriteOnce"},
		"persistentVolumeReclaimPolicy": "Delete",
		"hostPath":                      map[string]any{"path": "/tmp/" + ns},
		"claimRef":                      map[string]any{"namespace": ns, "name": claim},
	}})
	if err := admin.create(ctx, pv, false); err != nil {
		t.Fatalf("create %s: %v", pv.GetName(), err)
	}
	t.Cleanup(func() { _ = admin.delete(context.Background(), pv, false) })
}

// podReport lists the pods of ns and their phase and conditions, for a failed wait.
func podReport(ctx context.Context, admin *client, ns string) string {
	pods, err := admin.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "pods: " + err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		b.WriteString("pod " + p.Name + ": " + string(p.Status.Phase))
		for _, c := range p.Status.Conditions {
			if c.Status != "True" {
				b.WriteString(" " + string(c.Type) + "=" + string(c.Status) + " (" + c.Message + ")")
			}
		}
		b.WriteString("\n")
	}
	pvcs, _ := admin.cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if pvcs != nil {
		for _, c := range pvcs.Items {
			b.WriteString("pvc " + c.Name + ": " + string(c.Status.Phase) + "\n")
		}
	}
	return b.String()
}
