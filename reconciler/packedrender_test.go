package reconciler

import (
	"encoding/json"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// fullRender is a render with every field of render.Environment set.
func fullRender() *render.Environment {
	dep := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "shop-main", "labels": map[string]any{"app": "web"}},
		"spec":     map[string]any{"replicas": int64(2), "template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": "nginx:1.27"}}}}},
	}}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "env", "namespace": "shop-main"}, "data": map[string]any{"A": "1"}}}
	hook := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "batch/v1", "kind": "Job",
		"metadata": map[string]any{"name": "db-init", "namespace": "shop-main"}}}
	ref := render.ObjectRef{Group: "apps", Kind: "Deployment", Namespace: "shop-main", Name: "web"}
	return &render.Environment{
		App: "shop", Branch: "main", Commit: "abc123", EnvID: "main", Namespace: "shop-main", Template: "permanent", ConfigHash: "h1",
		Objects: []*unstructured.Unstructured{dep, cm},
		Workflows: map[string]render.Workflow{"setup": {Name: "setup", Steps: []render.Step{
			{Name: "db", Tasks: []string{"charts.db"}, WaitForFinish: true, HaltOnError: true, App: "backend"},
			{Name: "web", Tasks: []string{"services.web"}}}}},
		Tasks:        map[string][]render.ObjectRef{"services.web": {ref}},
		HaltOnError:  map[string]bool{"jobs.migrate": true},
		URLs:         []render.URL{{Service: "web", URL: "https://web-main.example.com"}},
		Links:        []schema.Link{{Name: "logs", URL: "https://logs.example.com/main"}},
		ExpiresAfter: "7d", AutoDeploy: true,
		Imports:               []render.ImportedApp{{App: "backend", Branch: "main", Commit: "def456"}},
		ParallelizeAppImports: true,
		Warnings:              []string{"chart db rendered from the cache"},
		Hooks:                 []render.Hook{{Task: "charts.db", Phase: render.HookBefore, Events: []string{"pre-install"}, Weight: -5, DeletePolicies: []string{"hook-succeeded"}, Object: hook}},
	}
}

// A packed render comes back whole and equal, each unpack a copy of its own
// sharing nothing, and takes less room than its JSON. The sample sets every
// field of render.Environment, so a field added to it that does not survive
// the round trip fails here.
func TestPackedRenderRoundTrip(t *testing.T) {
	env := fullRender()
	v := reflect.ValueOf(*env)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("the sample render leaves %s unset: set it, so that its round trip is checked", v.Type().Field(i).Name)
		}
	}
	p, err := packRender(env)
	if err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(env); len(p.data) >= len(js) {
		t.Errorf("the packed render takes %d bytes, its JSON %d", len(p.data), len(js))
	}
	a, b := p.unpack(), p.unpack()
	if a == nil || b == nil {
		t.Fatal("unpack returned nil")
	}
	if !reflect.DeepEqual(a, env) {
		ga, _ := json.Marshal(a)
		we, _ := json.Marshal(env)
		t.Errorf("unpacked\n%s\nwant\n%s", ga, we)
	}
	a.Objects[1].SetName("changed")
	a.Tasks["services.web"][0].Name = "changed"
	a.Workflows["setup"].Steps[0].Tasks[0] = "changed"
	if b.Objects[1].GetName() != "env" || env.Objects[1].GetName() != "env" ||
		b.Tasks["services.web"][0].Name != "web" || b.Workflows["setup"].Steps[0].Tasks[0] != "charts.db" {
		t.Error("two unpacks share parts of the render")
	}
}

// A packed render that cannot be read back unpacks to nil (rendered again),
// not to a partial render.
func TestPackedRenderCorrupt(t *testing.T) {
	p, err := packRender(fullRender())
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{p.data[:len(p.data)/2], []byte("not deflate"), {}} {
		if env := (packedRender{data: data}).unpack(); env != nil {
			t.Errorf("unpack of %d corrupt bytes returned %+v", len(data), env)
		}
	}
}
