package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/arbordev/arbor/internal/testcluster"
)

// refusal is one request arbor's ServiceAccount must not be allowed to make.
type refusal struct {
	name string
	do   func(ctx context.Context) error
	// why is text the API server's answer must contain: it tells an RBAC refusal
	// from the admission policy's.
	why string
}

const (
	byRBAC   = "cannot "                   // RBAC: `User "..." cannot create resource ...`
	byPolicy = "ValidatingAdmissionPolicy" // the admission policy's denial names it
	// RBAC's escalation check: a binding may grant only what arbor holds or
	// may bind (arbor may bind one ClusterRole, arbor-environment-secrets).
	byEscalation = "attempting to grant RBAC permissions not currently held"
	// The API server itself refuses to delete kube-system, kube-public and
	// default (NamespaceLifecycle admission), before the policy is asked.
	byLifecycle = "this namespace may not be deleted"
)

// TestServiceAccountIsRefusedTheRest proves the limits: as the arbor
// ServiceAccount, writes to kube-system, default and namespaces arbor did not
// create, changes to objects it did not create, and every cluster-scoped or
// namespaced kind it does not render are refused with Forbidden. Every request
// that could do harm if it were allowed is a dry run, so a failing test leaves
// the cluster unharmed.
func TestServiceAccountIsRefusedTheRest(t *testing.T) {
	adminCfg := testcluster.Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := newClient(t, adminCfg)
	install(t, ctx, admin, dirInstall)
	_, arborCfg := serviceAccountKubeconfig(t, ctx, admin, adminCfg)
	arbor := newClient(t, arborCfg)
	waitInForce(t, ctx, arbor)

	// An environment arbor created, holding one object someone made by hand.
	env := testcluster.Name("rbacrefuse")
	t.Cleanup(func() { _ = admin.cs.CoreV1().Namespaces().Delete(context.Background(), env, metav1.DeleteOptions{}) })
	if _, err := arbor.apply(ctx, obj("v1", "Namespace", "", env, managed(env), nil), arborManager, false); err != nil {
		t.Fatalf("as arbor, create environment namespace: %v", err)
	}
	handMade := obj("v1", "ConfigMap", env, "hand-made", map[string]string{"team": "ops"}, map[string]any{"data": map[string]any{"k": "v"}})
	if err := admin.create(ctx, handMade, false); err != nil {
		t.Fatal(err)
	}
	// A namespace arbor did not create.
	foreign := testcluster.Namespace(t, admin.cs)
	// An environment of another arbor install, and one from before installs
	// had names (arbor's label, no install label).
	otherEnv, unlabelledEnv := testcluster.Name("otherinstall"), testcluster.Name("unlabelled-env")
	for name, labels := range map[string]map[string]string{
		otherEnv:      {"app.kubernetes.io/managed-by": "arbor", "arbor.dev/install": "another-install"},
		unlabelledEnv: {"app.kubernetes.io/managed-by": "arbor"},
	} {
		if err := admin.create(ctx, obj("v1", "Namespace", "", name, labels, nil), false); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = admin.cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}

	dry := true
	cm := func(ns string, labels map[string]string) *unstructured.Unstructured {
		return obj("v1", "ConfigMap", ns, testcluster.Name("cm"), labels, map[string]any{"data": map[string]any{"k": "v"}})
	}
	deploy := func(ns string) *unstructured.Unstructured {
		return pick(environment(ns, "x"), "Deployment")
	}
	create := func(o *unstructured.Unstructured) func(context.Context) error {
		return func(ctx context.Context) error { return arbor.create(ctx, o, dry) }
	}
	apply := func(o *unstructured.Unstructured) func(context.Context) error {
		return func(ctx context.Context) error { _, err := arbor.apply(ctx, o, arborManager, dry); return err }
	}
	del := func(o *unstructured.Unstructured) func(context.Context) error {
		return func(ctx context.Context) error { return arbor.delete(ctx, o, dry) }
	}
	labelNamespace := func(ns string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := arbor.cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType,
				[]byte(`{"metadata":{"labels":{"app.kubernetes.io/managed-by":"arbor"}}}`),
				metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}
	}
	claimNamespace := func(ns string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := arbor.cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType,
				[]byte(`{"metadata":{"labels":{"arbor.dev/install":"`+namespace+`"}}}`),
				metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}
	}
	// The upgrade path: an unlabelled environment may be claimed.
	if err := claimNamespace(unlabelledEnv)(ctx); err != nil {
		t.Errorf("as arbor, label an unlabelled environment with its install (the upgrade): %v", err)
	}

	cases := []refusal{
		// Namespaces arbor must never write to, even with its labels on the object.
		{"create a ConfigMap in kube-system", create(cm("kube-system", managed("x"))), byPolicy},
		{"apply a Deployment in kube-system", apply(deploy("kube-system")), byPolicy},
		{"delete kube-system's kube-root-ca.crt", del(obj("v1", "ConfigMap", "kube-system", "kube-root-ca.crt", nil, nil)), byPolicy},
		{"delete namespace kube-system", del(obj("v1", "Namespace", "", "kube-system", nil, nil)), byLifecycle},
		{"delete namespace kube-node-lease", del(obj("v1", "Namespace", "", "kube-node-lease", nil, nil)), byPolicy},
		{"delete its own namespace", del(obj("v1", "Namespace", "", namespace, nil, nil)), byPolicy},
		{"label kube-system as arbor's", labelNamespace("kube-system"), byPolicy},
		{"create a Service in default", create(pick(environment("default", "x"), "Service")), byPolicy},
		{"delete namespace default", del(obj("v1", "Namespace", "", "default", nil, nil)), byLifecycle},
		{"create a Secret in arbor-system", create(obj("v1", "Secret", namespace, "x", managed("x"), nil)), byPolicy},
		// Namespaces and objects arbor did not create.
		{"create a ConfigMap in a namespace arbor did not create", create(cm(foreign, managed("x"))), byPolicy},
		{"delete a namespace arbor did not create", del(obj("v1", "Namespace", "", foreign, nil, nil)), byPolicy},
		{"adopt a namespace by labelling it", labelNamespace(foreign), byPolicy},
		{"create a namespace without arbor's label", create(obj("v1", "Namespace", "", testcluster.Name("unlabelled"), nil, nil)), byPolicy},
		{"create an object without arbor's label", create(cm(env, nil)), byPolicy},
		{"create an object without the install label", create(cm(env, map[string]string{"app.kubernetes.io/managed-by": "arbor"})), byPolicy},
		// Environments of another install, and unlabelled ones.
		{"create a ConfigMap in another install's environment", create(cm(otherEnv, managed(otherEnv))), byPolicy},
		{"take another install's namespace by relabelling it", claimNamespace(otherEnv), byPolicy},
		{"delete another install's namespace", del(obj("v1", "Namespace", "", otherEnv, nil, nil)), byPolicy},
		{"create a ConfigMap in an unlabelled environment", create(cm(unlabelledEnv, managed(unlabelledEnv))), byPolicy},
		{"delete an unlabelled environment's namespace", del(obj("v1", "Namespace", "", unlabelledEnv, nil, nil)), byPolicy},
		{"overwrite a hand-made object", apply(obj("v1", "ConfigMap", env, "hand-made", managed(env), map[string]any{"data": map[string]any{"k": "arbor"}})), byPolicy},
		{"delete a hand-made object", del(handMade), byPolicy},
		// Cluster-scoped kinds arbor does not need.
		{"create a ClusterRole", create(obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "arbor-escalate", nil, map[string]any{"rules": []any{}})), byRBAC},
		{"create a ClusterRoleBinding", create(obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "arbor-escalate", nil, map[string]any{
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": saName, "namespace": namespace}}})), byRBAC},
		{"create a CustomResourceDefinition", create(obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com", nil, map[string]any{"spec": map[string]any{
			"group": "example.com", "scope": "Namespaced",
			"names":    map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true, "schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object"}}}}}})), byRBAC},
		{"create a Node", create(obj("v1", "Node", "", "arbor-node", nil, nil)), byRBAC},
		{"label a Node", func(ctx context.Context) error {
			_, err := arbor.cs.CoreV1().Nodes().Patch(ctx, "any-node", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}, byRBAC},
		{"create a PersistentVolume", create(obj("v1", "PersistentVolume", "", "arbor-pv", nil, map[string]any{"spec": map[string]any{
			"capacity": map[string]any{"storage": "1Gi"}, "accessModes": []any{"ReadWriteOnce"}, "hostPath": map[string]any{"path": "/"}}})), byRBAC},
		{"create a StorageClass", create(obj("storage.k8s.io/v1", "StorageClass", "", "arbor-sc", nil, map[string]any{"provisioner": "example.com/x"})), byRBAC},
		{"delete its own admission policy", del(obj("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", "", "arbor-confinement", nil, nil)), byRBAC},
		{"create a ValidatingWebhookConfiguration", create(obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", "arbor-hook", nil, nil)), byRBAC},
		{"delete its own ClusterRoleBinding", del(obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "arbor", nil, nil)), byRBAC},
		// Namespaced kinds arbor does not render, even in its own environment.
		{"create a Role in an environment", create(obj("rbac.authorization.k8s.io/v1", "Role", env, "x", managed(env), map[string]any{"rules": []any{}})), byRBAC},
		{"create a RoleBinding in an environment", create(obj("rbac.authorization.k8s.io/v1", "RoleBinding", env, "x", managed(env), map[string]any{
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "web", "namespace": env}}})), byEscalation},
		{"create a RoleBinding outside its environments", create(obj("rbac.authorization.k8s.io/v1", "RoleBinding", "default", "x", managed("default"), map[string]any{
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "arbor-environment-secrets"},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "arbor", "namespace": "arbor-system"}}})), byPolicy},
		{"create a Pod in an environment", create(obj("v1", "Pod", env, "x", managed(env), map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "x", "image": "x"}}}})), byRBAC},
		{"create a DaemonSet in an environment", create(obj("apps/v1", "DaemonSet", env, "x", managed(env), nil)), byRBAC},
		{"create a DaemonSet in kube-system", create(obj("apps/v1", "DaemonSet", "kube-system", "x", managed("x"), nil)), byRBAC},
		// The cost guards are arbor's only in its environments.
		{"create a ResourceQuota outside its environments", create(obj("v1", "ResourceQuota", "default", "x", managed("default"), nil)), byPolicy},
		{"create a LimitRange outside its environments", create(obj("v1", "LimitRange", "default", "x", managed("default"), map[string]any{"spec": map[string]any{"limits": []any{}}})), byPolicy},
		{"list NetworkPolicies", func(ctx context.Context) error {
			_, err := arbor.cs.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
			return err
		}, byRBAC},
		{"mint a token for a ServiceAccount", func(ctx context.Context) error {
			_, err := arbor.cs.CoreV1().RESTClient().Post().Namespace(env).Resource("serviceaccounts").Name("default").SubResource("token").
				Body([]byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{}}`)).Do(ctx).Get()
			return err
		}, byRBAC},
		{"read Leases in kube-system", func(ctx context.Context) error {
			_, err := arbor.cs.CoordinationV1().Leases("kube-system").List(ctx, metav1.ListOptions{})
			return err
		}, byRBAC},
		// Pods: list and watch only (diagnostics), no get; logs only where
		// the environment binding grants them.
		{"get a Pod", func(ctx context.Context) error {
			_, err := arbor.cs.CoreV1().Pods("kube-system").Get(ctx, "x", metav1.GetOptions{})
			return err
		}, byRBAC},
		{"read a Pod's log outside its environments", func(ctx context.Context) error {
			return arbor.cs.CoreV1().Pods("kube-system").GetLogs("x", &corev1.PodLogOptions{}).Do(ctx).Error()
		}, byRBAC},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do(ctx)
			if !apierrors.IsForbidden(err) {
				t.Fatalf("as arbor, %s: got %v, want Forbidden", c.name, err)
			}
			if !strings.Contains(err.Error(), c.why) {
				t.Errorf("as arbor, %s: refused, but not by the expected layer (want %q in the answer): %v", c.name, c.why, err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// pick returns the first object of kind in objs.
func pick(objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	panic("no " + kind + " in the environment")
}
