package apply

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// SecretReaderRole is the ClusterRole (deploy/base/clusterrole.yaml) that lets
// its subject read Secrets. arbor holds no read access to Secrets in the
// cluster; it binds this role to itself in each namespace it manages, so the
// engine can read the live state of the Secrets it changes or prunes there.
const SecretReaderRole = "arbor-environment-secrets"

// SecretReaderBindingName is the RoleBinding's name in every environment namespace.
const SecretReaderBindingName = "arbor-secret-reader"

// SecretReaderBinding returns the RoleBinding, in namespace, that grants the
// ServiceAccount saNamespace/saName SecretReaderRole there. arbor may create
// it because RBAC lets it bind that one ClusterRole (the bind verb, limited by
// name) without holding the access itself. Apply it before the namespace's
// Secrets (kind order does: RoleBindings come before Secrets); it goes with
// the namespace.
func SecretReaderBinding(namespace, saNamespace, saName string, labels map[string]string) *unstructured.Unstructured {
	rb := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind":       "RoleBinding",
		"metadata":   map[string]any{"name": SecretReaderBindingName, "namespace": namespace},
		"roleRef":    map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": SecretReaderRole},
		"subjects":   []any{map[string]any{"kind": "ServiceAccount", "name": saName, "namespace": saNamespace}},
	}}
	rb.SetLabels(labels)
	return rb
}
