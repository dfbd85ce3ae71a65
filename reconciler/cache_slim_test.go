package reconciler

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
)

// The cache keeps of an environment's object only what it reads: whether
// arbor manages it (one shared labels map), its generation and version, and
// who wrote it when; everything else is dropped.
func TestSlimObjectKeepsWhatTheCacheReads(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	mk := func(name string, labels map[string]string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{
			TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop-main", Generation: 3, ResourceVersion: "41",
				Labels:          labels,
				Annotations:     map[string]string{"deployment.kubernetes.io/revision": "2"},
				OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web"}},
				Finalizers:      []string{"example.com/keep"},
				ManagedFields: []metav1.ManagedFieldsEntry{
					{Manager: "arbor", Operation: metav1.ManagedFieldsOperationApply, Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}},
					{Manager: controllerManager, Operation: metav1.ManagedFieldsOperationUpdate, Time: &now},
					{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate, Time: &now, Subresource: "status"},
					{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate, Time: &now},
				}},
		}
	}
	ours := map[string]string{render.LabelManagedBy: render.ManagedByValue, apply.LabelInstall: "default", render.LabelApp: "shop", render.LabelEnv: "main", "tier": "web"}
	a, _ := slimObject(mk("web", ours))
	b, _ := slimObject(mk("db", map[string]string{render.LabelManagedBy: render.ManagedByValue, render.LabelApp: "shop"}))
	other, _ := slimObject(mk("x", map[string]string{"app": "other"}))

	got := a.(*metav1.PartialObjectMetadata)
	if got.TypeMeta != (metav1.TypeMeta{}) || got.Annotations != nil || got.OwnerReferences != nil || got.Finalizers != nil {
		t.Errorf("kept more than the cache reads: %+v", got)
	}
	if got.Name != "web" || got.Namespace != "shop-main" || got.Generation != 3 || got.ResourceVersion != "41" {
		t.Errorf("lost the object's identity or version: %+v", got.ObjectMeta)
	}
	if !reflect.DeepEqual(got.Labels, map[string]string{render.LabelManagedBy: render.ManagedByValue}) {
		t.Errorf("labels %v, want only %s", got.Labels, render.LabelManagedBy)
	}
	if reflect.ValueOf(got.Labels).UnsafePointer() != reflect.ValueOf(b.(*metav1.PartialObjectMetadata).Labels).UnsafePointer() {
		t.Error("two managed objects hold labels maps of their own")
	}
	if l := other.(*metav1.PartialObjectMetadata).Labels; l[render.LabelManagedBy] != "" {
		t.Errorf("an object arbor does not manage reads as managed: %v", l)
	}
	want := []metav1.ManagedFieldsEntry{
		{Manager: "arbor", Operation: metav1.ManagedFieldsOperationApply, Time: &now},
		{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate, Time: &now},
	}
	if !reflect.DeepEqual(got.ManagedFields, want) {
		t.Errorf("managedFields %+v, want %+v", got.ManagedFields, want)
	}
}
