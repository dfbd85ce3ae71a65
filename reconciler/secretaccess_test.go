package reconciler

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
)

// TestSecretReaderBindingIsTheInstallsObject: the RoleBinding follows the
// Namespace and carries its owner labels, the install's included, like every
// other object of the environment.
func TestSecretReaderBindingIsTheInstallsObject(t *testing.T) {
	ns := &unstructured.Unstructured{}
	ns.SetKind("Namespace")
	ns.SetName("shop-main")
	ns.SetLabels(map[string]string{apply.LabelManagedBy: apply.ManagedByValue, apply.LabelInstall: "team-a", apply.LabelApp: "shop", apply.LabelEnv: "main"})
	cm := &unstructured.Unstructured{}
	cm.SetKind("ConfigMap")
	env := &render.Environment{Namespace: "shop-main", Objects: []*unstructured.Unstructured{ns, cm}}
	bindSecretReader(env, "arbor-system", "arbor")
	if len(env.Objects) != 3 || env.Objects[1].GetKind() != "RoleBinding" || env.Objects[2] != cm {
		t.Fatalf("objects: %v", env.Objects)
	}
	l := env.Objects[1].GetLabels()
	for k, want := range map[string]string{apply.LabelInstall: "team-a", apply.LabelApp: "shop", apply.LabelEnv: "main", apply.LabelManagedBy: apply.ManagedByValue} {
		if l[k] != want {
			t.Errorf("RoleBinding label %s = %q, want %q", k, l[k], want)
		}
	}
}
