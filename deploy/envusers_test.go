package deploy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/internal/testcluster"
)

// TestEnvUsersExampleGrants installs the Roles of examples/env-users.yaml in
// a test namespace, binds each to a ServiceAccount of its own, and asks the
// API server (SubjectAccessReview, as arbor's daemon does) which of arbor's
// verbs each may use: the grants docs/api.md promises, and no more.
func TestEnvUsersExampleGrants(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	ctx := context.Background()
	roles := exampleRoles(t)
	if len(roles) != 4 {
		t.Fatalf("%d Roles in examples/env-users.yaml, want 4", len(roles))
	}
	all := []string{"list", "get", "logs", "deploy", "pause", "resume", "extend", "delete"}
	want := map[string]map[string]bool{
		"arbor-env-viewer":    set("list", "get", "logs"),
		"arbor-env-operator":  set("list", "get", "logs", "deploy", "pause", "resume", "extend"),
		"arbor-env-admin":     set(all...),
		"arbor-env-shop-main": set("deploy", "pause", "resume", "logs"),
	}
	for _, role := range roles {
		role.Namespace = ns
		if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: role.Name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: role.Name, Namespace: ns}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, role := range roles {
		w, ok := want[role.Name]
		if !ok {
			t.Errorf("Role %s: not expected in the example", role.Name)
			continue
		}
		for _, verb := range all {
			for _, name := range []string{"shop/main", "shop/feature-x"} {
				expect := w[verb] && (role.Name != "arbor-env-shop-main" || name == "shop/main")
				if verb == "list" {
					name = "" // a list names no environment
					expect = w[verb]
				}
				if got := allowed(t, cs, ns, role.Name, verb, name); got != expect {
					t.Errorf("Role %s: %s %q allowed=%v, want %v", role.Name, verb, name, got, expect)
				}
			}
		}
	}
}

func set(verbs ...string) map[string]bool {
	m := map[string]bool{}
	for _, v := range verbs {
		m[v] = true
	}
	return m
}

// allowed asks as the daemon does whether ServiceAccount ns/sa may verb the
// environment name in namespace ns.
func allowed(t *testing.T, cs kubernetes.Interface, ns, sa, verb, name string) bool {
	t.Helper()
	r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authzv1.ResourceAttributes{
			Namespace: ns, Group: "arbor.dev", Resource: "environments", Verb: verb, Name: name,
		},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.Allowed
}

// exampleRoles reads the Roles of examples/env-users.yaml.
func exampleRoles(t *testing.T) []*rbacv1.Role {
	t.Helper()
	data, err := os.ReadFile("examples/env-users.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*rbacv1.Role
	for {
		var r rbacv1.Role
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind == "Role" {
			out = append(out, &r)
		}
	}
}
