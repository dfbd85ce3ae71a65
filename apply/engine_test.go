package apply_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/internal/testcluster"
)

// env is one test's engine, request counter and clients.
type env struct {
	t       *testing.T
	e       *apply.Engine
	count   *apply.RequestCounter
	cs      kubernetes.Interface
	ns      string
	ctx     context.Context
	options apply.ApplyOptions
}

// newEnv returns an engine on the test cluster, counting its requests, and a
// fresh namespace (not arbor's: created by the test).
func newEnv(t *testing.T, opts apply.Options) *env {
	t.Helper()
	cfg := testcluster.Config(t)
	count := &apply.RequestCounter{}
	cfg.Wrap(count.Wrap)
	e, err := apply.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &env{t: t, e: e, count: count, cs: cs, ns: ns, ctx: ctx, options: apply.ApplyOptions{Namespace: ns}}
}

func (v *env) apply(objs ...*unstructured.Unstructured) *apply.ChangeSet {
	v.t.Helper()
	cs, err := v.e.Apply(v.ctx, objs, v.options)
	if err != nil {
		v.t.Fatalf("Apply: %v\n%s", err, cs.Summary())
	}
	return cs
}

func wantActions(t *testing.T, cs *apply.ChangeSet, want ...apply.Action) {
	t.Helper()
	if len(cs.Changes) != len(want) {
		t.Fatalf("got %d changes, want %d:\n%s", len(cs.Changes), len(want), cs.Summary())
	}
	for i, c := range cs.Changes {
		if c.Action != want[i] {
			t.Fatalf("change %d: %s, want %s:\n%s", i, c.Action, want[i], cs.Summary())
		}
	}
}

func u(o map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: o} }

func configMap(name string, data map[string]any) *unstructured.Unstructured {
	return u(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name}, "data": data})
}

func secret(name string, data map[string]any) *unstructured.Unstructured {
	return u(map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": name}, "stringData": data})
}

func service(name string) *unstructured.Unstructured {
	return u(map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"selector": map[string]any{"app": name},
			"ports": []any{map[string]any{"port": int64(80), "targetPort": int64(8080)}}}})
}

func deployment(name, image string, replicas int64) *unstructured.Unstructured {
	labels := map[string]any{"app": name}
	return u(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"replicas": replicas, "selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": image}}}}}})
}

func job(name, image string, podLabels map[string]any) *unstructured.Unstructured {
	return u(map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"backoffLimit": int64(0),
			"template": map[string]any{"metadata": map[string]any{"labels": podLabels},
				"spec": map[string]any{"restartPolicy": "Never",
					"containers": []any{map[string]any{"name": "run", "image": image}}}}}})
}

func namespace(name string) *unstructured.Unstructured {
	return u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}})
}

func TestApplyCreateNoopChange(t *testing.T) {
	v := newEnv(t, apply.Options{})
	objs := func(value string) []*unstructured.Unstructured {
		return []*unstructured.Unstructured{
			deployment("web", "nginx:1.27", 1), service("web"),
			configMap("web-config", map[string]any{"greeting": value}), secret("web-secret", map[string]any{"token": "s3cret"}),
		}
	}
	cs := v.apply(objs("hello")...)
	wantActions(t, cs, apply.Created, apply.Created, apply.Created, apply.Created)

	v.count.Reset()
	cs = v.apply(objs("hello")...)
	wantActions(t, cs, apply.Unchanged, apply.Unchanged, apply.Unchanged, apply.Unchanged)
	if w := v.count.Writes(); w != 0 {
		t.Fatalf("no-op re-apply sent %d writes: %s", w, v.count)
	}
	if got := v.count.Counts()["apply-dryrun"]; got != 4 {
		t.Fatalf("no-op re-apply sent %d dry-runs, want 4: %s", got, v.count)
	}

	v.count.Reset()
	cs = v.apply(objs("bonjour")...)
	wantActions(t, cs, apply.Unchanged, apply.Unchanged, apply.Configured, apply.Unchanged)
	if got := strings.Join(cs.Changes[2].Fields, ","); got != ".data.greeting" {
		t.Fatalf("changed fields = %q", got)
	}
	if !strings.Contains(cs.Changes[2].Diff, "-  greeting: hello") || !strings.Contains(cs.Changes[2].Diff, "+  greeting: bonjour") {
		t.Fatalf("diff:\n%s", cs.Changes[2].Diff)
	}
	if got := v.count.Counts()["apply"]; got != 1 || v.count.Writes() != 1 {
		t.Fatalf("one change sent %s, want exactly one PATCH write", v.count)
	}
	cm, err := v.cs.CoreV1().ConfigMaps(v.ns).Get(v.ctx, "web-config", metav1.GetOptions{})
	if err != nil || cm.Data["greeting"] != "bonjour" || cm.Labels[apply.LabelManagedBy] != apply.ManagedByValue {
		t.Fatalf("live ConfigMap = %v, %v", cm, err)
	}
}

func TestApplyRemovedFieldIsRemoved(t *testing.T) {
	v := newEnv(t, apply.Options{})
	v.apply(configMap("c", map[string]any{"a": "1", "b": "2"}))
	cs := v.apply(configMap("c", map[string]any{"a": "1"}))
	wantActions(t, cs, apply.Configured)
	cm, err := v.cs.CoreV1().ConfigMaps(v.ns).Get(v.ctx, "c", metav1.GetOptions{})
	if err != nil || len(cm.Data) != 1 {
		t.Fatalf("live data = %v, %v", cm.Data, err)
	}
}

func TestPrune(t *testing.T) {
	v := newEnv(t, apply.Options{})
	first := []*unstructured.Unstructured{configMap("keep", map[string]any{"a": "1"}), configMap("drop", map[string]any{"a": "1"}), service("gone")}
	v.apply(first...)
	inv := apply.Inventory{}
	for _, o := range first {
		inv = append(inv, apply.ObjectRef{Kind: o.GetKind(), Namespace: v.ns, Name: o.GetName()})
	}
	// An object arbor did not create, slipped into the inventory: never deleted.
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: v.ns}}
	if _, err := v.cs.CoreV1().ConfigMaps(v.ns).Create(v.ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	inv = append(inv, apply.ObjectRef{Kind: "ConfigMap", Namespace: v.ns, Name: "foreign"})

	desired := []*unstructured.Unstructured{configMap("keep", map[string]any{"a": "1"})}
	v.apply(desired...)
	cs, err := v.e.Prune(v.ctx, inv, desired, v.options)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	got := map[string]apply.Action{}
	for _, c := range cs.Changes {
		got[c.Ref.Kind+"/"+c.Ref.Name] = c.Action
	}
	want := map[string]apply.Action{"ConfigMap/drop": apply.Deleted, "Service/gone": apply.Deleted, "ConfigMap/foreign": apply.Skipped}
	for k, a := range want {
		if got[k] != a {
			t.Errorf("%s: %s, want %s\n%s", k, got[k], a, cs.Summary())
		}
	}
	if _, ok := got["ConfigMap/keep"]; ok {
		t.Errorf("a desired object was considered for pruning:\n%s", cs.Summary())
	}
	for _, name := range []string{"keep", "foreign"} {
		if _, err := v.cs.CoreV1().ConfigMaps(v.ns).Get(v.ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("ConfigMap %s: %v", name, err)
		}
	}
	if _, err := v.cs.CoreV1().ConfigMaps(v.ns).Get(v.ctx, "drop", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pruned ConfigMap still there: %v", err)
	}
}

func TestPruneRefusesInventoryOutsideNamespace(t *testing.T) {
	v := newEnv(t, apply.Options{})
	inv := apply.Inventory{{Kind: "ConfigMap", Namespace: "kube-system", Name: "kube-root-ca.crt"}}
	if _, err := v.e.Prune(v.ctx, inv, nil, v.options); !errors.Is(err, apply.ErrConfinement) {
		t.Fatalf("Prune of a foreign inventory entry: %v", err)
	}
}

func TestImmutableJobIsRecreated(t *testing.T) {
	v := newEnv(t, apply.Options{})
	v.apply(job("migrate", "busybox:1.36", nil))
	before, err := v.cs.BatchV1().Jobs(v.ns).Get(v.ctx, "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	diff, err := v.e.Diff(v.ctx, []*unstructured.Unstructured{job("migrate", "busybox:1.37", nil)}, v.options)
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	wantActions(t, diff, apply.Recreated)
	cs := v.apply(job("migrate", "busybox:1.37", nil))
	wantActions(t, cs, apply.Recreated)
	t.Logf("%s%s", cs.Summary(), cs.UnifiedDiff())
	if got := strings.Join(cs.Changes[0].Fields, ","); got != ".spec.template.spec.containers[0].image" {
		t.Errorf("recreate fields = %s", got)
	}
	after, err := v.cs.BatchV1().Jobs(v.ns).Get(v.ctx, "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.UID == before.UID || after.Spec.Template.Spec.Containers[0].Image != "busybox:1.37" {
		t.Fatalf("Job not recreated: uid %s→%s image %s", before.UID, after.UID, after.Spec.Template.Spec.Containers[0].Image)
	}
}

func TestImmutableWithoutRecreateIsAClearError(t *testing.T) {
	v := newEnv(t, apply.Options{})
	pvc := func(size string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": map[string]any{"name": "data"},
			"spec": map[string]any{"accessModes": []any{"ReadWriteOnce"}, "storageClassName": "none",
				"resources": map[string]any{"requests": map[string]any{"storage": size}}}})
	}
	v.apply(pvc("1Gi"))
	withMode := pvc("1Gi")
	_ = unstructured.SetNestedField(withMode.Object, []any{"ReadWriteMany"}, "spec", "accessModes")
	_, err := v.e.Apply(v.ctx, []*unstructured.Unstructured{withMode}, v.options)
	t.Logf("Apply: %v", err)
	var ie *apply.ImmutableError
	if !errors.As(err, &ie) || !strings.HasPrefix(err.Error(), "PersistentVolumeClaim/"+v.ns+"/data: immutable fields changed: spec") || !strings.Contains(err.Error(), "does not recreate") {
		t.Fatalf("err = %v", err)
	}
}

func TestConflictWithAnotherManager(t *testing.T) {
	v := newEnv(t, apply.Options{})
	v.apply(configMap("c", map[string]any{"a": "1", "b": "1"}))
	// Someone takes .data.a with their own field manager.
	ac := corev1ac.ConfigMap("c", v.ns).WithData(map[string]string{"a": "hand-edited"})
	if _, err := v.cs.CoreV1().ConfigMaps(v.ns).Apply(v.ctx, ac, metav1.ApplyOptions{FieldManager: "other-tool", Force: true}); err != nil {
		t.Fatal(err)
	}
	v.count.Reset()
	_, err := v.e.Apply(v.ctx, []*unstructured.Unstructured{configMap("c", map[string]any{"a": "1", "b": "1"})}, v.options)
	t.Logf("Apply: %v", err)
	var ce *apply.ConflictError
	if !errors.As(err, &ce) || len(ce.Conflicts) != 1 || ce.Conflicts[0] != (apply.FieldConflict{Manager: "other-tool", Field: ".data.a"}) {
		t.Fatalf("err = %v, want a conflict with other-tool on .data.a", err)
	}
	if !strings.Contains(err.Error(), `.data.a (owned by "other-tool")`) || v.count.Writes() != 0 {
		t.Fatalf("err = %v; writes %s", err, v.count)
	}

	forced := newEnvSameNamespace(t, v, apply.Options{Force: true})
	cs := forced.apply(configMap("c", map[string]any{"a": "1", "b": "1"}))
	wantActions(t, cs, apply.Configured)
	cm, _ := v.cs.CoreV1().ConfigMaps(v.ns).Get(v.ctx, "c", metav1.GetOptions{})
	if cm.Data["a"] != "1" {
		t.Fatalf("forced apply left a=%q", cm.Data["a"])
	}
}

// newEnvSameNamespace returns an engine with other options on v's namespace.
func newEnvSameNamespace(t *testing.T, v *env, opts apply.Options) *env {
	e, err := apply.New(testcluster.Config(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	w := *v
	w.e = e
	return &w
}

// TestRecreate: the engine deletes an object to be made anew only when it
// is arbor's, stale, and in the environment; it waits until it is gone.
func TestRecreate(t *testing.T) {
	v := newEnv(t, apply.Options{})
	v.apply(configMap("run", map[string]any{"a": "1"}))
	if _, err := v.cs.CoreV1().ConfigMaps(v.ns).Create(v.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := apply.DeleteOptions{Namespace: v.ns}
	ref := func(ns, name string) apply.ObjectRef {
		return apply.ObjectRef{Kind: "ConfigMap", Namespace: ns, Name: name}
	}
	always := func(*unstructured.Unstructured) bool { return true }
	if done, err := v.e.Recreate(v.ctx, ref(v.ns, "run"), opts, func(*unstructured.Unstructured) bool { return false }); done || err != nil {
		t.Errorf("a fresh object: deleted=%v, %v; want left alone", done, err)
	}
	if done, err := v.e.Recreate(v.ctx, ref(v.ns, "theirs"), opts, always); done || err != nil {
		t.Errorf("an object arbor did not create: deleted=%v, %v; want left alone", done, err)
	}
	if _, err := v.e.Recreate(v.ctx, ref("kube-system", "kube-root-ca.crt"), opts, always); !errors.Is(err, apply.ErrConfinement) {
		t.Errorf("an object outside the environment: %v, want ErrConfinement", err)
	}
	if done, err := v.e.Recreate(v.ctx, ref(v.ns, "run"), opts, always); !done || err != nil {
		t.Fatalf("a stale object: deleted=%v, %v", done, err)
	}
	if _, err := v.cs.CoreV1().ConfigMaps(v.ns).Get(v.ctx, "run", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Recreate returned before the object was gone: %v", err)
	}
	for _, name := range []string{"theirs"} {
		if _, err := v.cs.CoreV1().ConfigMaps(v.ns).Get(v.ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("ConfigMap %s: %v", name, err)
		}
	}
	if _, err := v.cs.CoreV1().ConfigMaps("kube-system").Get(v.ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
		t.Errorf("kube-system's ConfigMap: %v", err)
	}
}

func TestNotManagedIsNotTakenOver(t *testing.T) {
	v := newEnv(t, apply.Options{})
	if _, err := v.cs.CoreV1().ConfigMaps(v.ns).Create(v.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := v.e.Apply(v.ctx, []*unstructured.Unstructured{configMap("theirs", map[string]any{"a": "1"})}, v.options)
	if !errors.Is(err, apply.ErrNotManaged) || !strings.HasPrefix(err.Error(), "ConfigMap/"+v.ns+"/theirs: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfinementRefusals(t *testing.T) {
	v := newEnv(t, apply.Options{})
	clusterRole := u(map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": map[string]any{"name": testcluster.Name("arbor-test")}})
	foreign := configMap("c", nil)
	foreign.SetNamespace("kube-system")
	for name, bad := range map[string]*unstructured.Unstructured{"cluster-scoped": clusterRole, "foreign namespace": foreign} {
		t.Run(name, func(t *testing.T) {
			v.count.Reset()
			_, err := v.e.Apply(v.ctx, []*unstructured.Unstructured{configMap("ok", nil), bad}, v.options)
			if !errors.Is(err, apply.ErrConfinement) {
				t.Fatalf("err = %v, want a confinement refusal", err)
			}
			if v.count.Writes() != 0 {
				t.Fatalf("a refused set still wrote: %s", v.count)
			}
			if _, err := v.cs.CoreV1().ConfigMaps(v.ns).Get(v.ctx, "ok", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("the allowed object of a refused set was applied: %v", err)
			}
		})
	}
	allowed := newEnvSameNamespace(t, v, apply.Options{AllowClusterScoped: true})
	cs := allowed.apply(clusterRole)
	wantActions(t, cs, apply.Created)
	t.Cleanup(func() {
		_ = v.cs.RbacV1().ClusterRoles().Delete(context.Background(), clusterRole.GetName(), metav1.DeleteOptions{})
	})
}

func TestDiffMasksSecretValues(t *testing.T) {
	v := newEnv(t, apply.Options{})
	const oldValue, newValue = "correct-horse-battery", "staple-9f8e7d"
	cs, err := v.e.Diff(v.ctx, []*unstructured.Unstructured{secret("s", map[string]any{"password": oldValue})}, v.options)
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, cs, apply.Created)
	assertNoSecret(t, cs.UnifiedDiff(), oldValue)
	v.apply(secret("s", map[string]any{"password": oldValue, "user": "admin"}))

	cs, err = v.e.Diff(v.ctx, []*unstructured.Unstructured{secret("s", map[string]any{"password": newValue, "user": "admin"})}, v.options)
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, cs, apply.Configured)
	d := cs.UnifiedDiff()
	assertNoSecret(t, d, oldValue, newValue, "admin")
	if !strings.Contains(d, "+  password: (hidden, changed)") || strings.Contains(d, "+  user") {
		t.Fatalf("diff does not show just the changed key:\n%s", d)
	}
	if got := strings.Join(cs.Changes[0].Fields, ","); got != ".data.password" {
		t.Fatalf("fields = %q", got)
	}
	if v.count.Counts()["apply"] != 1 {
		t.Fatalf("Diff wrote: %s", v.count)
	}
}

func assertNoSecret(t *testing.T, text string, values ...string) {
	t.Helper()
	for _, s := range values {
		if strings.Contains(text, s) || strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(s))) {
			t.Fatalf("diff shows the secret value %q:\n%s", s, text)
		}
	}
}

func TestDiffNewNamespace(t *testing.T) {
	v := newEnv(t, apply.Options{})
	ns := testcluster.Name("arbor-new")
	v.options.Namespace = ns
	cs, err := v.e.Diff(v.ctx, []*unstructured.Unstructured{namespace(ns), configMap("c", map[string]any{"a": "1"})}, v.options)
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	wantActions(t, cs, apply.Created, apply.Created)
	if !cs.Changed() || v.count.Writes() != 0 {
		t.Fatalf("Changed=%v writes %s", cs.Changed(), v.count)
	}
}

func TestWaitDeploymentAndJobs(t *testing.T) {
	v := newEnv(t, apply.Options{})
	ok := []*unstructured.Unstructured{deployment("web", "nginx:1.27", 2), job("migrate", "busybox:1.36", nil)}
	v.apply(ok...)
	if err := v.e.Wait(v.ctx, ok, apply.WaitOptions{Namespace: v.ns, Timeout: time.Minute}); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	d, err := v.cs.AppsV1().Deployments(v.ns).Get(v.ctx, "web", metav1.GetOptions{})
	if err != nil || d.Status.AvailableReplicas != 2 {
		t.Fatalf("after Wait: %v available, %v", d.Status.AvailableReplicas, err)
	}
	j, err := v.cs.BatchV1().Jobs(v.ns).Get(v.ctx, "migrate", metav1.GetOptions{})
	if err != nil || j.Status.Succeeded != 1 {
		t.Fatalf("after Wait: Job succeeded=%d, %v", j.Status.Succeeded, err)
	}

	bad := []*unstructured.Unstructured{job("broken", "busybox:1.36", map[string]any{"arbor.dev/test-fail": "true"})}
	v.apply(bad...)
	err = v.e.Wait(v.ctx, bad, apply.WaitOptions{Namespace: v.ns, Timeout: time.Minute})
	t.Logf("Wait: %v", err)
	if !errors.Is(err, apply.ErrJobFailed) || !strings.Contains(err.Error(), "Job/"+v.ns+"/broken") || !strings.Contains(err.Error(), "BackoffLimitExceeded") {
		t.Fatalf("Wait on a failing Job: %v", err)
	}
}

func TestWaitTimeoutNamesWhatIsMissing(t *testing.T) {
	v := newEnv(t, apply.Options{})
	// No node has this label: the pod is never scheduled.
	d := deployment("stuck", "nginx:1.27", 1)
	_ = unstructured.SetNestedStringMap(d.Object, map[string]string{"arbor.dev/no-such-node": "true"}, "spec", "template", "spec", "nodeSelector")
	v.apply(d)
	start := time.Now()
	err := v.e.Wait(v.ctx, []*unstructured.Unstructured{d}, apply.WaitOptions{Namespace: v.ns, Timeout: 3 * time.Second})
	t.Logf("Wait: %v", err)
	if err == nil || !strings.Contains(err.Error(), "Deployment/"+v.ns+"/stuck: not ready") || time.Since(start) > 30*time.Second {
		t.Fatalf("Wait = %v after %s", err, time.Since(start))
	}
}

// ownNamespace creates an environment namespace through the engine (so it
// carries arbor's label) and removes it, finalizers included, after the test.
func ownNamespace(t *testing.T, v *env) string {
	ns := testcluster.Name("arbor-env")
	v.options.Namespace = ns
	t.Cleanup(func() {
		ctx := context.Background()
		cms, _ := v.cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		for _, cm := range cms.Items {
			if len(cm.Finalizers) > 0 {
				_, _ = v.cs.CoreV1().ConfigMaps(ns).Patch(ctx, cm.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
			}
		}
		_ = v.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	})
	return ns
}

func TestDeleteEnvironment(t *testing.T) {
	v := newEnv(t, apply.Options{})
	ns := ownNamespace(t, v)
	objs := []*unstructured.Unstructured{namespace(ns), configMap("c", map[string]any{"a": "1"}), deployment("web", "nginx:1.27", 1), service("web")}
	cs := v.apply(objs...)
	inv := apply.Inventory{}
	for _, c := range cs.Changes {
		inv = append(inv, c.Ref)
	}
	if err := v.e.Wait(v.ctx, objs, apply.WaitOptions{Namespace: ns, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	del, err := v.e.Delete(v.ctx, inv, apply.DeleteOptions{Namespace: ns, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("Delete: %v\n%s", err, del.Summary())
	}
	t.Logf("namespace deleted in %s", time.Since(start))
	if _, err := v.cs.CoreV1().Namespaces().Get(v.ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace still there after Delete: %v", err)
	}
}

func TestDeleteRefusesNamespaceNotArbors(t *testing.T) {
	v := newEnv(t, apply.Options{})
	cs := v.apply(configMap("c", nil))
	inv := apply.Inventory{cs.Changes[0].Ref, {Kind: "Namespace", Name: v.ns}}
	del, err := v.e.Delete(v.ctx, inv, apply.DeleteOptions{Namespace: v.ns, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if del.Count(apply.Deleted) != 1 || del.Count(apply.Skipped) != 1 {
		t.Fatalf("Delete:\n%s", del.Summary())
	}
	if n, err := v.cs.CoreV1().Namespaces().Get(v.ctx, v.ns, metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
		t.Fatalf("a namespace arbor did not create was deleted: %v", err)
	}
	if _, err := v.e.Delete(v.ctx, nil, apply.DeleteOptions{Namespace: "kube-system"}); err != nil {
		t.Fatalf("Delete of kube-system: %v", err)
	}
	if n, err := v.cs.CoreV1().Namespaces().Get(v.ctx, "kube-system", metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
		t.Fatalf("kube-system: %v", err)
	}
}

func TestDeleteNamesStuckFinalizer(t *testing.T) {
	v := newEnv(t, apply.Options{})
	ns := ownNamespace(t, v)
	held := configMap("held", map[string]any{"a": "1"})
	held.SetFinalizers([]string{"arbor.dev/test-never-clears"})
	cs := v.apply(namespace(ns), held)
	inv := apply.Inventory{cs.Changes[0].Ref, cs.Changes[1].Ref}
	start := time.Now()
	_, err := v.e.Delete(v.ctx, inv, apply.DeleteOptions{Namespace: ns, Timeout: 5 * time.Second})
	took := time.Since(start)
	t.Logf("Delete: %v", err)
	if err == nil {
		t.Fatal("Delete succeeded although a finalizer never clears")
	}
	for _, want := range []string{"Namespace/" + ns + ": still terminating after 5s", "ConfigMap/" + ns + "/held held by finalizers [arbor.dev/test-never-clears]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if took > 30*time.Second {
		t.Errorf("Delete took %s with a 5s timeout", took)
	}
}

// TestNewNamespaceCreatesWithoutReads: after the caller created the
// namespace, its contents are created with one write each and no read, the
// Namespace given again is left alone, and NoDiff leaves the diffs out.
func TestNewNamespaceCreatesWithoutReads(t *testing.T) {
	v := newEnv(t, apply.Options{})
	ns := ownNamespace(t, v)
	wantActions(t, v.apply(namespace(ns)), apply.Created)

	v.count.Reset()
	v.options.NewNamespace, v.options.NoDiff = true, true
	cs := v.apply(namespace(ns), configMap("c", map[string]any{"a": "1"}), service("web"), deployment("web", "nginx:1.27", 1))
	wantActions(t, cs, apply.Unchanged, apply.Created, apply.Created, apply.Created)
	counts := v.count.Counts()
	if counts["apply"] != 3 || len(counts) != 1 {
		t.Fatalf("a new namespace's three objects sent %s, want exactly three apply writes", v.count)
	}
	for _, c := range cs.Changes {
		if c.Diff != "" {
			t.Fatalf("%s: NoDiff, yet a diff:\n%s", c.Ref, c.Diff)
		}
	}
	if _, err := v.cs.AppsV1().Deployments(ns).Get(v.ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("the Deployment was not created: %v", err)
	}

	// Without the options the same objects are read and found unchanged.
	v.count.Reset()
	v.options.NewNamespace, v.options.NoDiff = false, false
	wantActions(t, v.apply(configMap("c", map[string]any{"a": "1"})), apply.Unchanged)
	if v.count.Writes() != 0 || v.count.Counts()["get"] != 1 {
		t.Fatalf("re-apply sent %s, want one get and no write", v.count)
	}
}

// ClaimFirst: a namespace the caller has no sign of is claimed with a
// create and no read; one that exists is read after the create is refused,
// and another owner's is refused as without the option, nothing written.
func TestClaimFirst(t *testing.T) {
	v := newEnv(t, apply.Options{})
	// the engine's first call reads the API's discovery: not counted below
	if _, err := v.e.Apply(v.ctx, []*unstructured.Unstructured{configMap("c", nil)}, apply.ApplyOptions{Namespace: v.ns}); err != nil {
		t.Fatal(err)
	}
	v.count.Reset()
	ns := ownNamespace(t, v)
	mine := namespace(ns)
	mine.SetLabels(map[string]string{apply.LabelInstall: "i", apply.LabelApp: "a", apply.LabelEnv: "e1"})
	v.options.Owner, v.options.ClaimFirst, v.options.NoDiff = apply.OwnerOf(mine), true, true
	cs := v.apply(mine)
	wantActions(t, cs, apply.Created)
	if c := v.count.Counts(); c["get"] != 0 || c["create"] != 1 || c["apply"] != 1 || len(c) != 2 {
		t.Fatalf("a new namespace claimed first sent %s, want one create and one apply, no read", v.count)
	}
	// The Change carries the UID of what the server wrote, as every write's does.
	if created, err := v.cs.CoreV1().Namespaces().Get(v.ctx, ns, metav1.GetOptions{}); err != nil || cs.Changes[0].UID != created.UID {
		t.Fatalf("the claim's Change has UID %q, the namespace %v (%v)", cs.Changes[0].UID, created.GetUID(), err)
	}

	// Another environment's claim on the same name: refused after one read.
	v.count.Reset()
	other := namespace(ns)
	other.SetLabels(map[string]string{apply.LabelInstall: "i", apply.LabelApp: "a", apply.LabelEnv: "e2"})
	v.options.Owner = apply.OwnerOf(other)
	_, err := v.e.Apply(v.ctx, []*unstructured.Unstructured{other}, v.options)
	var owned *apply.OwnedByOtherError
	if !errors.As(err, &owned) {
		t.Fatalf("claiming another environment's namespace: %v, want an OwnedByOtherError", err)
	}
	if c := v.count.Counts(); c["create"] != 1 || c["get"] != 1 || len(c) != 2 {
		t.Fatalf("the refused claim sent %s, want a refused create and one read, nothing else", v.count)
	}
	live, err := v.cs.CoreV1().Namespaces().Get(v.ctx, ns, metav1.GetOptions{})
	if err != nil || live.Labels[apply.LabelEnv] != "e1" {
		t.Fatalf("the namespace after a refused claim: %v, %v", live.Labels, err)
	}
}
