package render

import (
	"bytes"
	"context"
	"fmt"
	"go/format"
	"maps"
	"os"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/arbordev/arbor/internal/testcluster"
)

// scopeTableFile is the generated table of built-in kinds.
const scopeTableFile = "scope_table.go"

// TestBuiltinScopesMatchTheCluster reads the test cluster's discovery (a real
// kube-apiserver) and checks that builtinNamespaced lists exactly its built-in
// kinds, each with the scope the API server gives it, so that the table
// cannot go stale silently when the cluster's version moves. With -update it
// writes scope_table.go from that discovery instead.
func TestBuiltinScopesMatchTheCluster(t *testing.T) {
	cfg := testcluster.Config(t)
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	live := liveBuiltinScopes(t, dc, dyn)
	if *update {
		if err := os.WriteFile(scopeTableFile, scopeTableSource(t, ver.GitVersion, live), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: %d built-in kinds of %s", scopeTableFile, len(live), ver.GitVersion)
		return
	}
	const hint = "(run go test ./render -run TestBuiltinScopesMatchTheCluster -update against the test cluster)"
	if ver.GitVersion != builtinScopesVersion {
		t.Errorf("the table was read from %s, the cluster is %s %s", builtinScopesVersion, ver.GitVersion, hint)
	}
	for k, ns := range live {
		got, ok := builtinNamespaced[k]
		switch {
		case !ok:
			t.Errorf("%s %s (namespaced=%v) is served by the cluster but missing from the table %s", k.Group, k.Kind, ns, hint)
		case got != ns:
			t.Errorf("%s %s: the table says namespaced=%v, the cluster says %v %s", k.Group, k.Kind, got, ns, hint)
		}
	}
	for k := range builtinNamespaced {
		if _, ok := live[k]; !ok {
			t.Errorf("%s %s is in the table but the cluster does not serve it %s", k.Group, k.Kind, hint)
		}
	}
	if len(live) < 50 {
		t.Errorf("the cluster's discovery lists only %d built-in kinds; expected the whole Kubernetes API", len(live))
	}
}

// liveBuiltinScopes returns every kind the API server serves, in any version,
// except those of CustomResourceDefinitions and of aggregated API servers:
// what is left is Kubernetes' own API.
func liveBuiltinScopes(t *testing.T, dc discovery.DiscoveryInterface, dyn dynamic.Interface) map[kindKey]bool {
	t.Helper()
	ctx := context.Background()
	notBuiltin := crdKinds(t, dyn)
	aggregated := map[string]bool{}
	svcs, err := dyn.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs.Items {
		if spec, _ := s.Object["spec"].(map[string]any); spec["service"] != nil {
			g, _ := spec["group"].(string)
			aggregated[g] = true
		}
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	// CRDs are listed before and after discovery: one that another test
	// creates meanwhile is not taken for a built-in kind.
	maps.Copy(notBuiltin, crdKinds(t, dyn))
	out := map[kindKey]bool{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		if aggregated[gv.Group] {
			continue
		}
		for _, r := range l.APIResources {
			k := kindKey{gv.Group, r.Kind}
			if strings.Contains(r.Name, "/") || notBuiltin[k] {
				continue // a subresource, or a custom resource
			}
			if prev, seen := out[k]; seen && prev != r.Namespaced {
				t.Fatalf("%s %s is namespaced in one version and not in another", k.Group, k.Kind)
			}
			out[k] = r.Namespaced
		}
	}
	return out
}

// crdKinds are the kinds the cluster's CustomResourceDefinitions define.
func crdKinds(t *testing.T, dyn dynamic.Interface) map[kindKey]bool {
	t.Helper()
	crds, err := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).
		List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[kindKey]bool{}
	for _, c := range crds.Items {
		g, _, _ := unstructured.NestedString(c.Object, "spec", "group")
		k, _, _ := unstructured.NestedString(c.Object, "spec", "names", "kind")
		out[kindKey{g, k}] = true
	}
	return out
}

// scopeTableSource is scope_table.go for the kinds of one API server version.
func scopeTableSource(t *testing.T, version string, kinds map[kindKey]bool) []byte {
	keys := make([]kindKey, 0, len(kinds))
	for k := range kinds {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Group != keys[j].Group {
			return keys[i].Group < keys[j].Group
		}
		return keys[i].Kind < keys[j].Kind
	})
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by go test ./render -run TestBuiltinScopesMatchTheCluster -update from the discovery of kube-apiserver %s. DO NOT EDIT.\n\n", version)
	b.WriteString("package render\n\n")
	b.WriteString("// builtinScopesVersion is the Kubernetes version builtinNamespaced was read from.\n")
	fmt.Fprintf(&b, "const builtinScopesVersion = %q\n\n", version)
	b.WriteString("// builtinNamespaced maps every kind Kubernetes itself serves (in any API\n")
	b.WriteString("// version enabled by default) to whether its objects live in a namespace.\n")
	b.WriteString("var builtinNamespaced = map[kindKey]bool{\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "\t{%q, %q}: %v,\n", k.Group, k.Kind, kinds[k])
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return src
}
