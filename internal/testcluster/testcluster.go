// Package testcluster connects integration tests to arbor's local test cluster:
// a real kube-apiserver, controller-manager, scheduler and etcd with kwok nodes,
// started by `make test` (hack/cluster.sh) before `go test` runs.
//
// Tests that need the cluster call Config(t). Under `go test -short` they are
// skipped; otherwise a missing or unreachable cluster fails the test, so that CI
// never passes by skipping.
package testcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// EnvKubeconfig names the variable `make test` sets to the cluster's kubeconfig.
const EnvKubeconfig = "ARBOR_TEST_KUBECONFIG"

// KubeconfigPath returns the test cluster's kubeconfig path, failing t when it is unknown.
func KubeconfigPath(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the local cluster (run `make test`)")
	}
	path := os.Getenv(EnvKubeconfig)
	if path == "" {
		t.Fatalf("integration test needs the local cluster: run `make test`, or `make cluster` and set %s to its kubeconfig", EnvKubeconfig)
	}
	return path
}

// Config returns a rest.Config for the test cluster after checking that it answers.
func Config(t testing.TB) *rest.Config {
	t.Helper()
	path := KubeconfigPath(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("test cluster kubeconfig %s: %v", path, err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("test cluster client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		t.Fatalf("test cluster at %s is not ready: %v", cfg.Host, err)
	}
	return rest.CopyConfig(cfg)
}

// Clientset returns a typed client for the test cluster.
func Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(Config(t))
	if err != nil {
		t.Fatalf("test cluster client: %v", err)
	}
	return cs
}

// Name returns a DNS-label name unique to this test run: prefix, a dash, 6 hex characters.
func Name(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	prefix = strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(prefix))
	if len(prefix) > 50 {
		prefix = prefix[:50]
	}
	return strings.Trim(prefix, "-") + "-" + hex.EncodeToString(b)
}

// Namespace creates a fresh namespace for the test and deletes it when the test ends.
func Namespace(t testing.TB, cs kubernetes.Interface) string {
	t.Helper()
	name := Name("t-" + t.Name())
	ctx := context.Background()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		err := cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("delete namespace %s: %v", name, err)
		}
	})
	return name
}

// ServiceAccountToken creates ServiceAccount name in ns and returns a token
// for it from the TokenRequest API. With verbs, a Role and RoleBinding in ns
// let it do those verbs of arbor's on environments (apiGroup arbor.dev).
func ServiceAccountToken(t testing.TB, cs kubernetes.Interface, ns, name string, verbs ...string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ServiceAccount %s/%s: %v", ns, name, err)
	}
	if len(verbs) > 0 {
		role := &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"arbor.dev"}, Resources: []string{"environments"}, Verbs: verbs}},
		}
		if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Role %s/%s: %v", ns, name, err)
		}
		binding := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}},
		}
		if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create RoleBinding %s/%s: %v", ns, name, err)
		}
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}
