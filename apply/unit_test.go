package apply

import (
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func obj(apiVersion, kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}
	if ns != "" {
		o["metadata"].(map[string]any)["namespace"] = ns
	}
	for k, v := range fields {
		o[k] = v
	}
	return &unstructured.Unstructured{Object: o}
}

func TestNormalizeDropsGeneratedFields(t *testing.T) {
	live := obj("v1", "ConfigMap", "ns", "c", map[string]any{"data": map[string]any{"a": "1"}, "status": map[string]any{"x": "y"}})
	md := live.Object["metadata"].(map[string]any)
	md["resourceVersion"], md["uid"], md["generation"] = "12", "abc", int64(3)
	md["creationTimestamp"] = "2026-01-01T00:00:00Z"
	md["managedFields"] = []any{map[string]any{"manager": "arbor"}}
	md["annotations"] = map[string]any{"kubectl.kubernetes.io/last-applied-configuration": "{}"}
	got := normalize(live)
	want := normalize(obj("v1", "ConfigMap", "ns", "c", map[string]any{"data": map[string]any{"a": "1"}}))
	if toYAML(got) != toYAML(want) {
		t.Fatalf("normalize left generated fields:\n%s\nwant:\n%s", toYAML(got), toYAML(want))
	}
	if _, ok := live.Object["status"]; !ok {
		t.Fatal("normalize modified its input")
	}
}

func TestMaskSecretsHidesValuesAndShowsChangedKeys(t *testing.T) {
	before := obj("v1", "Secret", "ns", "s", map[string]any{"data": map[string]any{
		"same": "c2VjcmV0LTE=", "changed": "b2xkLXZhbHVl", "removed": "Z29uZQ=="}}).Object
	after := obj("v1", "Secret", "ns", "s", map[string]any{"data": map[string]any{
		"same": "c2VjcmV0LTE=", "changed": "bmV3LXZhbHVl", "added": "YWRkZWQ="}}).Object
	maskSecrets(before, after)
	d := objectDiff(ObjectRef{Kind: "Secret", Namespace: "ns", Name: "s"}, before, after)
	for _, v := range []string{"c2VjcmV0LTE=", "b2xkLXZhbHVl", "bmV3LXZhbHVl", "Z29uZQ==", "YWRkZWQ="} {
		if strings.Contains(d, v) {
			t.Errorf("diff contains secret value %q:\n%s", v, d)
		}
	}
	for _, line := range []string{"+  changed: " + maskChanged, "-  changed: " + maskSame, "+  added: " + maskSame, "-  removed: " + maskSame} {
		if !strings.Contains(d, line) {
			t.Errorf("diff lacks %q:\n%s", line, d)
		}
	}
	if strings.Contains(d, "-  same") || strings.Contains(d, "+  same") {
		t.Errorf("unchanged key shows as changed:\n%s", d)
	}
}

func TestMaskSecretsLeavesOtherKinds(t *testing.T) {
	cm := obj("v1", "ConfigMap", "ns", "c", map[string]any{"data": map[string]any{"a": "1"}}).Object
	maskSecrets(nil, cm)
	if cm["data"].(map[string]any)["a"] != "1" {
		t.Fatal("ConfigMap data was masked")
	}
}

func TestChangedFields(t *testing.T) {
	before := map[string]any{"spec": map[string]any{"replicas": int64(1), "template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"name": "web", "image": "a:1"}}}}}}
	after := map[string]any{"spec": map[string]any{"replicas": int64(2), "template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"name": "web", "image": "a:2"}}}}}, "data": "x"}
	got := strings.Join(changedFields(before, after), " ")
	want := ".data .spec.replicas .spec.template.spec.containers[0].image"
	if got != want {
		t.Fatalf("changedFields = %q, want %q", got, want)
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	b := "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\n"
	got := unifiedDiff("x", "y", a, b, 1)
	want := "--- x\n+++ y\n@@ -3,3 +3,3 @@\n c\n-d\n+D\n e\n@@ -10 +10,2 @@\n j\n+k\n"
	if got != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", got, want)
	}
	if unifiedDiff("x", "y", a, a, 3) != "" {
		t.Fatal("equal texts gave a diff")
	}
	if got := unifiedDiff("x", "y", "", "a\n", 3); got != "--- x\n+++ y\n@@ -0,0 +1 @@\n+a\n" {
		t.Fatalf("diff from nothing:\n%s", got)
	}
}

func TestUnifiedDiffLargeFallsBack(t *testing.T) {
	var a, b strings.Builder
	for i := 0; i < 3000; i++ {
		a.WriteString("a" + strings.Repeat("x", i%7) + "\n")
		b.WriteString("b" + strings.Repeat("x", i%5) + "\n")
	}
	d := unifiedDiff("x", "y", a.String(), b.String(), 3)
	if strings.Count(d, "\n-a") != 3000 || strings.Count(d, "\n+b") != 3000 {
		t.Fatal("large diff is not a full replacement")
	}
}

func TestGroupsOrder(t *testing.T) {
	kinds := []string{"Ingress", "Job", "Deployment", "Service", "PersistentVolumeClaim", "Secret", "ConfigMap",
		"RoleBinding", "ServiceAccount", "CustomResourceDefinition", "Namespace", "Widget"}
	var items []*item
	for i, k := range kinds {
		items = append(items, &item{idx: i, ref: ObjectRef{Kind: k}, group: groupOf(k)})
	}
	var got []string
	for _, g := range groups(items) {
		var names []string
		for _, it := range g {
			names = append(names, it.ref.Kind)
		}
		got = append(got, strings.Join(names, "+"))
	}
	want := "Namespace CustomResourceDefinition RoleBinding+ServiceAccount Secret+ConfigMap PersistentVolumeClaim Service Deployment Job Ingress Widget"
	if strings.Join(got, " ") != want {
		t.Fatalf("groups = %q\nwant     %q", strings.Join(got, " "), want)
	}
}

func TestConfine(t *testing.T) {
	e := &Engine{opts: Options{AllowedNamespaces: []string{"shared"}}}
	cases := []struct {
		name       string
		o          *unstructured.Unstructured
		namespaced bool
		wantNS     string
		refused    bool
	}{
		{"defaulted", obj("v1", "ConfigMap", "", "c", nil), true, "env", false},
		{"same", obj("v1", "ConfigMap", "env", "c", nil), true, "env", false},
		{"allowed", obj("v1", "ConfigMap", "shared", "c", nil), true, "shared", false},
		{"foreign", obj("v1", "ConfigMap", "kube-system", "c", nil), true, "", true},
		{"own namespace", obj("v1", "Namespace", "", "env", nil), false, "", false},
		{"other namespace", obj("v1", "Namespace", "", "other", nil), false, "", true},
		{"cluster role", obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "r", nil), false, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := e.confine(c.o, c.namespaced, "env")
			if c.refused {
				if !errors.Is(err, ErrConfinement) {
					t.Fatalf("err = %v, want a confinement refusal", err)
				}
				return
			}
			if err != nil || c.o.GetNamespace() != c.wantNS {
				t.Fatalf("err = %v, namespace %q; want nil, %q", err, c.o.GetNamespace(), c.wantNS)
			}
		})
	}
	e.opts.AllowClusterScoped = true
	if err := e.confine(obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "r", nil), false, "env"); err != nil {
		t.Fatalf("cluster-scoped refused although allowed: %v", err)
	}
}

func TestConfineRef(t *testing.T) {
	e := &Engine{}
	if err := e.confineRef(ObjectRef{Kind: "ConfigMap", Namespace: "kube-system", Name: "x"}, "env"); !errors.Is(err, ErrConfinement) {
		t.Fatalf("foreign inventory entry accepted: %v", err)
	}
	if err := e.confineRef(ObjectRef{Kind: "Namespace", Name: "kube-system"}, "env"); !errors.Is(err, ErrConfinement) {
		t.Fatalf("foreign namespace entry accepted: %v", err)
	}
	if err := e.confineRef(ObjectRef{Kind: "Namespace", Name: "env"}, "env"); err != nil {
		t.Fatalf("own namespace refused: %v", err)
	}
}

func TestProtected(t *testing.T) {
	e := &Engine{opts: Options{ProtectedNamespaces: []string{"arbor-system"}}}
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease", "arbor-system", ""} {
		if !e.protected(ns) {
			t.Errorf("%q is not protected", ns)
		}
	}
	if e.protected("shop-main") {
		t.Error("an environment namespace is protected")
	}
}

func TestAsConflict(t *testing.T) {
	err := &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: 409, Reason: metav1.StatusReasonConflict,
		Message: `Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.a`,
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
			Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "kubectl-edit" using v1`, Field: ".data.a"}}},
	}}
	ce, ok := asConflict(ObjectRef{Kind: "ConfigMap", Namespace: "ns", Name: "c"}, err)
	if !ok || len(ce.Conflicts) != 1 || ce.Conflicts[0] != (FieldConflict{Manager: "kubectl-edit", Field: ".data.a"}) {
		t.Fatalf("asConflict = %+v, %v", ce, ok)
	}
	msg := ce.Error()
	if !strings.HasPrefix(msg, "ConfigMap/ns/c: ") || !strings.Contains(msg, `.data.a (owned by "kubectl-edit")`) {
		t.Fatalf("message %q", msg)
	}
	if !errors.Is(ce, err) {
		t.Fatal("ConflictError does not wrap the API error")
	}
}

func TestIsImmutable(t *testing.T) {
	err := apierrors.NewInvalid(schema.GroupKind{Group: "batch", Kind: "Job"}, "j", nil)
	if isImmutable(err) {
		t.Fatal("a plain invalid error is immutable")
	}
	err.ErrStatus.Message = `Job.batch "j" is invalid: spec.template: Invalid value: ...: field is immutable`
	if !isImmutable(err) {
		t.Fatal("immutable error not recognized")
	}
}

func TestReadiness(t *testing.T) {
	// dep is a Deployment's status as the controller writes it; available
	// replicas also count as ready, and Available is True when all are.
	dep := func(gen, og, want, updated, avail, total int64) *unstructured.Unstructured {
		availableCond := "False"
		if avail >= want {
			availableCond = "True"
		}
		o := obj("apps/v1", "Deployment", "ns", "d", map[string]any{
			"spec": map[string]any{"replicas": want},
			"status": map[string]any{"observedGeneration": og, "updatedReplicas": updated, "availableReplicas": avail,
				"readyReplicas": avail, "replicas": total, "conditions": []any{
					map[string]any{"type": "Available", "status": availableCond},
					map[string]any{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
				}},
		})
		o.SetGeneration(gen)
		return o
	}
	stalled := dep(2, 2, 2, 1, 1, 2)
	_ = unstructured.SetNestedSlice(stalled.Object, []any{map[string]any{"type": "Progressing", "status": "False",
		"reason": "ProgressDeadlineExceeded", "message": `ReplicaSet "d-1" has timed out progressing.`}}, "status", "conditions")
	job := func(typ string) *unstructured.Unstructured {
		return obj("batch/v1", "Job", "ns", "j", map[string]any{"status": map[string]any{"conditions": []any{
			map[string]any{"type": typ, "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}}}})
	}
	cases := []struct {
		name  string
		o     *unstructured.Unstructured
		ready bool
		fails bool
	}{
		{"deployment rolled out", dep(2, 2, 2, 2, 2, 2), true, false},
		{"deployment old generation", dep(3, 2, 2, 2, 2, 2), false, false},
		{"deployment unavailable", dep(2, 2, 2, 2, 1, 2), false, false},
		{"deployment old replicas", dep(2, 2, 2, 2, 2, 3), false, false},
		{"deployment stalled", stalled, false, true},
		{"job complete", job("Complete"), true, false},
		{"job failed", job("Failed"), false, true},
		{"job running", obj("batch/v1", "Job", "ns", "j", nil), false, false},
		{"custom without conditions", obj("example.com/v1", "Widget", "ns", "w", nil), true, false},
		{"custom not ready", obj("example.com/v1", "Widget", "ns", "w", map[string]any{"status": map[string]any{
			"conditions": []any{map[string]any{"type": "Ready", "status": "False"}}}}), false, false},
		{"pod without conditions", obj("v1", "Pod", "ns", "p", nil), false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ready, msg, err := Ready(c.o)
			if ready != c.ready || (err != nil) != c.fails {
				t.Fatalf("Ready = %v, %q, %v", ready, msg, err)
			}
			if c.o.GetKind() == "Job" && c.fails && (!errors.Is(err, ErrJobFailed) || !strings.Contains(err.Error(), "BackoffLimitExceeded")) {
				t.Fatalf("failure lacks its reason: %v", err)
			}
			if c.o.GetKind() == "Deployment" && c.fails && !strings.Contains(err.Error(), "ProgressDeadlineExceeded") {
				t.Fatalf("failure lacks its reason: %v", err)
			}
		})
	}
}

func TestInventorySorted(t *testing.T) {
	inv := Inventory{{Kind: "Service", Namespace: "a", Name: "x"}, {Kind: "ConfigMap", Namespace: "a", Name: "x"}, {Kind: "Service", Namespace: "a", Name: "x"}}
	got := inv.Sorted()
	if len(got) != 2 || got[0].Kind != "ConfigMap" {
		t.Fatalf("Sorted = %v", got)
	}
}
