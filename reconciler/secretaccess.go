package reconciler

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
)

// bindSecretReader puts, right after the environment's Namespace, the
// RoleBinding that lets arbor's ServiceAccount read this namespace's Secrets
// (apply.SecretReaderBinding): arbor reads no Secret anywhere else but its own
// namespace. The binding is an object of the environment like any other:
// applied before the Secrets, kept while the namespace lives, deleted with it.
func bindSecretReader(env *render.Environment, saNamespace, saName string) {
	if len(env.Objects) == 0 || env.Objects[0].GetKind() != "Namespace" || saName == "" {
		return
	}
	labels := apply.OwnerOf(env.Objects[0]) // install, app and env: whose it is
	labels[apply.LabelManagedBy] = apply.ManagedByValue
	rb := apply.SecretReaderBinding(env.Namespace, saNamespace, saName, labels)
	objs := make([]*unstructured.Unstructured, 0, len(env.Objects)+1)
	objs = append(objs, env.Objects[0], rb)
	env.Objects = append(objs, env.Objects[1:]...)
}
