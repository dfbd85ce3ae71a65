package reconciler

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/render"
)

// A packed render comes back with the same objects, each unpack a copy of
// its own, and takes less room than the objects' JSON.
func TestPackedRenderRoundTrip(t *testing.T) {
	dep := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "shop-main", "labels": map[string]any{"app": "web"}},
		"spec":     map[string]any{"replicas": int64(2), "template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": "nginx:1.27"}}}}},
	}}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "env", "namespace": "shop-main"}, "data": map[string]any{"A": "1"}}}
	env := &render.Environment{App: "shop", Branch: "main", Namespace: "shop-main", Objects: []*unstructured.Unstructured{dep, cm}}
	p, err := packRender(env)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(env.Objects)
	a, b := p.unpack(), p.unpack()
	if a == nil || b == nil {
		t.Fatal("unpack returned nil")
	}
	got, _ := json.Marshal(a.Objects)
	if string(got) != string(want) || a.App != "shop" || a.Namespace != "shop-main" {
		t.Errorf("unpacked %s, want %s", got, want)
	}
	a.Objects[1].SetName("changed")
	if b.Objects[1].GetName() != "env" || env.Objects[1].GetName() != "env" {
		t.Error("two unpacks share their objects")
	}
	if p.env.Objects != nil {
		t.Error("the packed render still holds the objects as maps")
	}
}
