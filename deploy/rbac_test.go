package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/internal/testcluster"
)

// arborManager is the field manager arbor writes with.
const arborManager = "arbor"

// environment returns the objects of one environment in namespace ns, one of
// every kind arbor renders (and a StatefulSet, as kustomize output may hold), labelled as arbor labels them. version changes the
// content so that applying twice is an update.
func environment(ns, version string) []*unstructured.Unstructured {
	l := managed(ns)
	podLabels := map[string]any{"arbor.dev/service": "web"}
	for k, v := range l {
		podLabels[k] = v
	}
	podSpec := map[string]any{
		"serviceAccountName": "web",
		"containers": []any{map[string]any{
			"name": "web", "image": "registry.example.com/shop/web:" + version,
			"envFrom": []any{map[string]any{"configMapRef": map[string]any{"name": "env"}}, map[string]any{"secretRef": map[string]any{"name": "env"}}},
		}},
	}
	jobSpec := map[string]any{
		"backoffLimit": int64(0), "ttlSecondsAfterFinished": int64(600),
		"template": map[string]any{"spec": map[string]any{"restartPolicy": "Never", "containers": []any{map[string]any{"name": "migrate", "image": "registry.example.com/shop/web:" + version, "command": []any{"true"}}}}},
	}
	return []*unstructured.Unstructured{
		obj("v1", "Namespace", "", ns, l, nil),
		// What the daemon applies first in every environment: arbor's read access
		// to this namespace's Secrets (reconciler/secretaccess.go).
		apply.SecretReaderBinding(ns, namespace, saName, l),
		obj("v1", "ServiceAccount", ns, "web", l, nil),
		obj("v1", "ConfigMap", ns, "env", l, map[string]any{"data": map[string]any{"RELEASE_COMMIT_SHA": version}}),
		obj("v1", "Secret", ns, "env", l, map[string]any{"stringData": map[string]any{"DB_PASSWORD": "not-a-real-secret-" + version}}),
		// The cost guards of the daemon config (reconciler/guards.go).
		obj("v1", "ResourceQuota", ns, "arbor-quota", l, map[string]any{"spec": map[string]any{"hard": map[string]any{"pods": "10"}}}),
		obj("v1", "LimitRange", ns, "arbor-limits", l, map[string]any{"spec": map[string]any{"limits": []any{map[string]any{
			"type": "Container", "default": map[string]any{"memory": "256Mi"}}}}}),
		obj("v1", "PersistentVolumeClaim", ns, "data", l, map[string]any{"spec": map[string]any{
			"accessModes": []any{"ReadWriteOnce"}, "resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}}}),
		obj("v1", "Service", ns, "web", l, map[string]any{"spec": map[string]any{
			"selector": map[string]any{"arbor.dev/service": "web"},
			"ports":    []any{map[string]any{"name": "http", "port": int64(80), "targetPort": int64(8080)}}}}),
		obj("apps/v1", "Deployment", ns, "web", l, map[string]any{"spec": map[string]any{
			"replicas": int64(1),
			"selector": map[string]any{"matchLabels": map[string]any{"arbor.dev/service": "web"}},
			"template": map[string]any{"metadata": map[string]any{"labels": podLabels}, "spec": podSpec}}}),
		// A StatefulSet, as a kustomize directory of the branch may hold.
		obj("apps/v1", "StatefulSet", ns, "db", l, map[string]any{"spec": map[string]any{
			"replicas": int64(1), "serviceName": "db",
			"selector": map[string]any{"matchLabels": map[string]any{"arbor.dev/service": "db"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"arbor.dev/service": "db"}},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "db", "image": "postgres:17"}}}}}}),
		obj("autoscaling/v2", "HorizontalPodAutoscaler", ns, "web", l, map[string]any{"spec": map[string]any{
			"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
			"minReplicas":    int64(1), "maxReplicas": int64(3),
			"metrics": []any{map[string]any{"type": "Resource", "resource": map[string]any{"name": "cpu", "target": map[string]any{"type": "Utilization", "averageUtilization": int64(80)}}}}}}),
		obj("batch/v1", "Job", ns, "migrate-"+version, l, map[string]any{"spec": jobSpec}),
		obj("batch/v1", "CronJob", ns, "nightly", l, map[string]any{"spec": map[string]any{
			"schedule": "0 3 * * *", "concurrencyPolicy": "Forbid", "jobTemplate": map[string]any{"spec": jobSpec}}}),
		obj("networking.k8s.io/v1", "Ingress", ns, "ingress", l, map[string]any{"spec": map[string]any{
			"rules": []any{map[string]any{"host": "web-" + ns + ".preview.example.com", "http": map[string]any{"paths": []any{map[string]any{
				"path": "/", "pathType": "Prefix",
				"backend": map[string]any{"service": map[string]any{"name": "web", "port": map[string]any{"number": int64(80)}}}}}}}}}}),
	}
}

// TestServiceAccountCanRunEnvironments proves the install's permissions are
// enough: authenticated only by a TokenRequest token of the arbor
// ServiceAccount, it creates, updates and deletes an environment with one object
// of every kind arbor renders, reads them cluster-wide as its watch cache does,
// emits events, holds its Lease and reads its secrets_from Secret.
func TestServiceAccountCanRunEnvironments(t *testing.T) {
	adminCfg := testcluster.Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := newClient(t, adminCfg)
	install(t, ctx, admin, dirInstall)
	_, arborCfg := serviceAccountKubeconfig(t, ctx, admin, adminCfg)
	arbor := newClient(t, arborCfg)
	waitInForce(t, ctx, arbor)

	ns := testcluster.Name("rbactest")
	t.Cleanup(func() { _ = admin.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	// Create, then update.
	for _, version := range []string{"v1", "v2"} {
		for _, o := range environment(ns, version) {
			if _, err := arbor.apply(ctx, o, arborManager, false); err != nil {
				t.Fatalf("as arbor, apply %s (%s): %v", o.GetKind(), version, err)
			}
		}
	}
	cm, err := arbor.cs.CoreV1().ConfigMaps(ns).Get(ctx, "env", metav1.GetOptions{})
	if err != nil || cm.Data["RELEASE_COMMIT_SHA"] != "v2" {
		t.Fatalf("as arbor, the updated ConfigMap reads %v, %v", cm, err)
	}

	// A dry-run apply is how arbor diffs.
	for _, o := range environment(ns, "v3") {
		if _, err := arbor.apply(ctx, o, arborManager, true); err != nil {
			t.Errorf("as arbor, dry-run apply %s: %v", o.GetKind(), err)
		}
	}

	checkSecretAccess(t, ctx, admin, arbor, ns)
	checkPodLogAccess(t, ctx, admin, arbor, ns)
	checkDiagnosticsAccess(t, ctx, arbor, ns)

	// The watch cache lists and watches every kind across all namespaces, but
	// Secrets, which arbor may read only where it binds the right to.
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=arbor"}
	for _, o := range environment(ns, "v2") {
		if o.GetKind() == "Secret" {
			continue
		}
		r, err := arbor.resource(obj(o.GetAPIVersion(), o.GetKind(), "", "", nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		list, err := r.List(ctx, sel)
		if err != nil {
			t.Errorf("as arbor, list %s in all namespaces: %v", o.GetKind(), err)
			continue
		}
		if !containsName(list, o.GetNamespace(), o.GetName()) {
			t.Errorf("as arbor, list %s in all namespaces lacks %s/%s", o.GetKind(), ns, o.GetName())
		}
		w, err := r.Watch(ctx, sel)
		if err != nil {
			t.Errorf("as arbor, watch %s in all namespaces: %v", o.GetKind(), err)
			continue
		}
		w.Stop()
	}

	// Events about the environment.
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: "web.", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: ns, Name: "web", APIVersion: "apps/v1"},
		Reason:         "Applied", Message: "rbactest", Type: corev1.EventTypeNormal, Source: corev1.EventSource{Component: "arbor"},
	}
	if _, err := arbor.cs.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Errorf("as arbor, create an Event: %v", err)
	}

	checkLeaderLease(t, ctx, arbor)
	checkSecretsFrom(t, ctx, admin, arbor)

	// Prune: a Job of an old run and an object no longer rendered.
	for _, o := range []*unstructured.Unstructured{
		obj("batch/v1", "Job", ns, "migrate-v1", nil, nil),
		obj("autoscaling/v2", "HorizontalPodAutoscaler", ns, "web", nil, nil),
	} {
		if err := arbor.delete(ctx, o, false); err != nil {
			t.Errorf("as arbor, prune %s/%s: %v", o.GetKind(), o.GetName(), err)
		}
	}

	// Delete the environment: its namespace, which the namespace controller empties.
	if err := arbor.delete(ctx, obj("v1", "Namespace", "", ns, nil, nil), false); err != nil {
		t.Fatalf("as arbor, delete namespace %s: %v", ns, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := arbor.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("namespace %s still exists 2 minutes after arbor deleted it", ns)
	}
}

// checkDiagnosticsAccess: arbor lists and watches pods everywhere, and
// reads a pod's log in its environment (through the secret-reader binding).
func checkDiagnosticsAccess(t *testing.T, ctx context.Context, arbor *client, ns string) {
	t.Helper()
	var pod string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := arbor.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=arbor,arbor.dev/service=web"})
		if err != nil {
			return false, err
		}
		for _, p := range l.Items {
			if p.Namespace == ns && p.Status.Phase == corev1.PodRunning {
				pod = p.Name
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("as arbor, list pods in all namespaces (waiting for web's): %v", err)
	}
	w, err := arbor.cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=arbor"})
	if err != nil {
		t.Errorf("as arbor, watch pods in all namespaces: %v", err)
	} else {
		w.Stop()
	}
	tail := int64(1)
	if err := arbor.cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{TailLines: &tail}).Do(ctx).Error(); err != nil {
		t.Errorf("as arbor, read pod %s/%s's log: %v", ns, pod, err)
	}
}

func containsName(list *unstructured.UnstructuredList, ns, name string) bool {
	for _, i := range list.Items {
		if i.GetNamespace() == ns && i.GetName() == name {
			return true
		}
	}
	return false
}

// checkLeaderLease: arbor can create and renew a replica Lease, and no other
// (the admission policy arbor-leases).
func checkLeaderLease(t *testing.T, ctx context.Context, arbor *client) {
	t.Helper()
	leases := arbor.cs.CoordinationV1().Leases(namespace)
	holder := "rbactest"
	l, err := leases.Get(ctx, "arbor-replica-rbactest", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "arbor-replica-rbactest"},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: ptr(int32(1))},
		}, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatalf("as arbor, get or create Lease arbor-replica-rbactest: %v", err)
	}
	l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Errorf("as arbor, renew Lease arbor-replica-rbactest: %v", err)
	}
	// The replicas watch each other's Leases (docs/clusters.md).
	if w, err := leases.Watch(ctx, metav1.ListOptions{LabelSelector: "arbor.dev/replica-lease"}); err != nil {
		t.Errorf("as arbor, watch the replica Leases: %v", err)
	} else {
		w.Stop()
	}
	// The Role cannot name the replicas' Leases; the admission policy
	// arbor-leases keeps arbor to arbor-replica-*.
	if _, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "kube-scheduler"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Errorf("as arbor, create another Lease: got %v, want Forbidden", err)
	}
	if _, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "arbor-replica-other"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("as arbor, dry-run create a replica Lease: %v", err)
	}
	if _, err := arbor.cs.CoordinationV1().Leases("kube-system").Get(ctx, "kube-scheduler", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("as arbor, read a Lease in kube-system: got %v, want Forbidden", err)
	}
}

// checkSecretsFrom: arbor reads a Secret in its own namespace, and cannot write there.
func checkSecretsFrom(t *testing.T, ctx context.Context, admin, arbor *client) {
	t.Helper()
	name := testcluster.Name("arbor-secrets-rbactest")
	_, err := admin.cs.CoreV1().Secrets(namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		StringData: map[string]string{"DB_PASSWORD": "from-secrets-from"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.cs.CoreV1().Secrets(namespace).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	s, err := arbor.cs.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil || string(s.Data["DB_PASSWORD"]) != "from-secrets-from" {
		t.Errorf("as arbor, read its secrets_from Secret: %v", err)
	}
	err = arbor.delete(ctx, obj("v1", "Secret", namespace, name, nil, nil), true)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "arbor may not write to namespace arbor-system") {
		t.Errorf("as arbor, delete a Secret in its own namespace: got %v, want Forbidden by the admission policy", err)
	}
}

// checkSecretAccess: arbor reads the Secrets of an environment namespace it
// manages (through the RoleBinding it applied there) and no other Secret: not
// in an unrelated namespace, not cluster-wide, by access review and by a real
// request; and it cannot bind itself any other role.
func checkSecretAccess(t *testing.T, ctx context.Context, admin, arbor *client, envNS string) {
	t.Helper()
	if s, err := arbor.cs.CoreV1().Secrets(envNS).Get(ctx, "env", metav1.GetOptions{}); err != nil || len(s.Data["DB_PASSWORD"]) == 0 {
		t.Errorf("as arbor, read a Secret of its environment: %v", err)
	}
	other := testcluster.Name("unrelated")
	if _, err := admin.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.cs.CoreV1().Namespaces().Delete(context.Background(), other, metav1.DeleteOptions{}) })
	if _, err := admin.cs.CoreV1().Secrets(other).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": "p"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what      string
		namespace string
		verb      string
		request   func() error
	}{
		{"get a Secret in an unrelated namespace", other, "get", func() error {
			_, err := arbor.cs.CoreV1().Secrets(other).Get(ctx, "db", metav1.GetOptions{})
			return err
		}},
		{"list Secrets in an unrelated namespace", other, "list", func() error {
			_, err := arbor.cs.CoreV1().Secrets(other).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"list Secrets cluster-wide", "", "list", func() error {
			_, err := arbor.cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch Secrets cluster-wide", "", "watch", func() error {
			w, err := arbor.cs.CoreV1().Secrets("").Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		}},
		{"get a Secret cluster-wide", "", "get", nil},
	} {
		review, err := arbor.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
			Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{
				Namespace: c.namespace, Verb: c.verb, Resource: "secrets"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed {
			t.Errorf("as arbor, can-i %s: allowed", c.what)
		}
		if c.request != nil {
			if err := c.request(); !apierrors.IsForbidden(err) {
				t.Errorf("as arbor, %s: %v, want Forbidden", c.what, err)
			}
		}
	}
	escalate := obj("rbac.authorization.k8s.io/v1", "RoleBinding", envNS, "arbor-admin", managed(envNS), map[string]any{
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": saName, "namespace": namespace}}})
	if _, err := arbor.apply(ctx, escalate, arborManager, false); !apierrors.IsForbidden(err) {
		t.Errorf("as arbor, bind ClusterRole admin in an environment: %v, want Forbidden", err)
	}
}

// checkPodLogAccess: arbor lists pods and reads their logs (the API's logs
// action) where it bound arbor-environment-secrets, and nowhere else.
func checkPodLogAccess(t *testing.T, ctx context.Context, admin, arbor *client, ns string) {
	t.Helper()
	if _, err := arbor.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("as arbor, list the pods of environment %s: %v", ns, err)
	}
	foreign := testcluster.Namespace(t, admin.cs)
	for _, c := range []struct {
		ns   string
		want bool
	}{{ns, true}, {foreign, false}, {namespace, false}} {
		r, err := arbor.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authzv1.ResourceAttributes{Namespace: c.ns, Resource: "pods", Subresource: "log", Verb: "get"},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != c.want {
			t.Errorf("as arbor, get pods/log in %s: allowed=%v, want %v", c.ns, r.Status.Allowed, c.want)
		}
	}
}
