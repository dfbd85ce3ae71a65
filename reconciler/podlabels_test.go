package reconciler

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/render"
)

// labelPodTemplates: a chart's Deployment gets arbor's install, app and env
// labels on its pods, its own labels (managed-by Helm, its selector's) kept;
// a Job's template, which cannot change, is left alone.
func TestLabelPodTemplates(t *testing.T) {
	own := map[string]any{"app.kubernetes.io/managed-by": "arbor", "arbor.dev/install": "i", "arbor.dev/app": "shop", "arbor.dev/env": "x"}
	mk := func(apiVersion, kind string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": "cache", "labels": own},
			"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "cache", "app.kubernetes.io/managed-by": "Helm"}}}},
		}}
	}
	dep, job := mk("apps/v1", "Deployment"), mk("batch/v1", "Job")
	labelPodTemplates(&render.Environment{Objects: []*unstructured.Unstructured{dep, job}})
	got, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
	want := map[string]string{"app": "cache", "app.kubernetes.io/managed-by": "Helm", "arbor.dev/install": "i", "arbor.dev/app": "shop", "arbor.dev/env": "x"}
	if len(got) != len(want) {
		t.Errorf("Deployment's pod labels %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Deployment's pod label %s = %q, want %q", k, got[k], v)
		}
	}
	if jl, _, _ := unstructured.NestedStringMap(job.Object, "spec", "template", "metadata", "labels"); len(jl) != 2 {
		t.Errorf("the Job's pod labels changed: %v", jl)
	}
}

// A branch's chart or kustomize directory may hand arbor a workload of any
// shape: a template that is not a map, labels that are not strings, no spec.
// Nothing panics, and such an object is left exactly as it came (the API
// server names what is wrong with it when it is applied).
func TestLabelPodTemplatesMalformed(t *testing.T) {
	own := map[string]any{"arbor.dev/install": "i", "arbor.dev/app": "shop", "arbor.dev/env": "x"}
	specs := map[string]any{
		"spec a string":           "oops",
		"template a list":         map[string]any{"template": []any{"a", int64(1)}},
		"template metadata a num": map[string]any{"template": map[string]any{"metadata": int64(7)}},
		"labels not strings":      map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"a": int64(1), "b": []any{}}}}},
		"labels a string":         map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": "app=web"}}},
	}
	for name, spec := range specs {
		o := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "w", "labels": own}, "spec": spec,
		}}
		before := o.DeepCopy()
		labelPodTemplates(&render.Environment{Objects: []*unstructured.Unstructured{o}})
		if !equality.Semantic.DeepEqual(before.Object, o.Object) {
			t.Errorf("%s: a malformed workload was changed: %v", name, o.Object)
		}
	}
	// Labels of the wrong shape on the workload itself: nothing to copy, no panic.
	bad := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "StatefulSet",
		"metadata": map[string]any{"name": "s", "labels": "arbor.dev/env=x"}, "spec": map[string]any{}}}
	labelPodTemplates(&render.Environment{Objects: []*unstructured.Unstructured{bad}})
}
