package render

import (
	"context"
	"path/filepath"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/arbordev/arbor/internal/testcluster"
)

// serverDryRun creates every object of env with a server-side dry run, so
// the API server checks each one against its real schema and validation; the
// namespace is created for real (without arbor's labels) for the others.
func serverDryRun(t *testing.T, env *Environment) {
	t.Helper()
	cfg := testcluster.Config(t)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	ctx := context.Background()
	for i, o := range env.Objects {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s/%s: %v", gvk.Kind, o.GetName(), err)
		}
		opts := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}
		var res dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if o.GetNamespace() != "" {
			res = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := res.Create(ctx, o.DeepCopy(), opts); err != nil {
			t.Errorf("%s %s: %v", gvk.Kind, o.GetName(), err)
		}
		if i == 0 {
			if gvk.Kind != "Namespace" {
				t.Fatalf("first object is %s, want the Namespace", gvk.Kind)
			}
			// The others need the namespace to exist. It is created without
			// arbor's labels, so that no arbor daemon running against the
			// same cluster takes it for an environment of its own.
			plain := &unstructured.Unstructured{}
			plain.SetAPIVersion("v1")
			plain.SetKind("Namespace")
			plain.SetName(o.GetName())
			if _, err := res.Create(ctx, plain, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create namespace %s: %v", o.GetName(), err)
			}
			name := o.GetName()
			t.Cleanup(func() {
				err := dyn.Resource(m.Resource).Delete(context.Background(), name, metav1.DeleteOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					t.Logf("delete namespace %s: %v", name, err)
				}
			})
		}
	}
}

// TestGoldenOnCluster sends every golden case's objects to the real API
// server (server-side dry run), under a branch unique to the run.
func TestGoldenOnCluster(t *testing.T) {
	for _, name := range caseDirs(t, "testdata/golden") {
		t.Run(name, func(t *testing.T) {
			in := loadCase(t, filepath.Join("testdata/golden", name))
			in.Context.Branch = testcluster.Name("render-" + name)
			env, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			serverDryRun(t, env)
		})
	}
}
