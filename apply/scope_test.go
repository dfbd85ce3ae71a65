package apply_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/internal/testcluster"
)

// installCRD creates a CustomResourceDefinition of the given scope with a
// group unique to the test, waits until discovery serves it, and deletes it
// when the test ends. It returns the group.
func installCRD(t *testing.T, scope string) string {
	t.Helper()
	cfg := testcluster.Config(t)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	group := testcluster.Name("scope") + ".arbor.test"
	crd := u(map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets." + group},
		"spec": map[string]any{
			"group": group, "scope": scope,
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	})
	res := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	ctx := context.Background()
	if _, err := res.Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Delete(context.Background(), crd.GetName(), metav1.DeleteOptions{}) })
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if l, err := dc.ServerResourcesForGroupVersion(group + "/v1"); err == nil && len(l.APIResources) > 0 {
			return group
		}
		if time.Now().After(deadline) {
			t.Fatalf("discovery does not serve %s/v1 a minute after its CRD was created", group)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterScopedCRDRefusedBeforeAnyWrite installs a cluster-scoped CRD
// after the engine has filled its discovery cache (as a daemon that has run
// for a while has), then applies a set holding one of its objects: the
// engine rediscovers the API, learns the kind is cluster-scoped, and refuses
// the whole set before writing anything.
func TestClusterScopedCRDRefusedBeforeAnyWrite(t *testing.T) {
	v := newEnv(t, apply.Options{})
	v.apply(configMap("before", nil)) // fills the engine's discovery cache
	group := installCRD(t, "Cluster")
	widget := u(map[string]any{"apiVersion": group + "/v1", "kind": "Widget", "metadata": map[string]any{"name": "w1"}})
	v.count.Reset()
	_, err := v.e.Apply(v.ctx, []*unstructured.Unstructured{configMap("ok", nil), widget}, v.options)
	if !errors.Is(err, apply.ErrConfinement) || !strings.Contains(err.Error(), "Widget is cluster-scoped") {
		t.Fatalf("err = %v, want a confinement refusal of the cluster-scoped Widget", err)
	}
	if v.count.Writes() != 0 {
		t.Fatalf("a refused set still wrote: %s", v.count)
	}
	if _, err := v.cs.CoreV1().ConfigMaps(v.ns).Get(v.ctx, "ok", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the allowed object of a refused set was applied: %v", err)
	}
}

// TestNamespacedCRDInstalledLaterApplies is the other side: a namespaced
// kind installed after the cache was filled is applied into the namespace.
func TestNamespacedCRDInstalledLaterApplies(t *testing.T) {
	v := newEnv(t, apply.Options{})
	v.apply(configMap("before", nil))
	group := installCRD(t, "Namespaced")
	widget := u(map[string]any{"apiVersion": group + "/v1", "kind": "Widget", "metadata": map[string]any{"name": "w1"}})
	cs := v.apply(widget)
	wantActions(t, cs, apply.Created)
	if ns := cs.Changes[0].Ref.Namespace; ns != v.ns {
		t.Errorf("Widget applied in namespace %q, want %q", ns, v.ns)
	}
}
