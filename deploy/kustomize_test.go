package deploy

import (
	"fmt"
	"sort"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The kustomizations under test, relative to this directory.
const (
	dirInstall = "."                 // what `kubectl apply -k deploy/` installs
	dirExample = "overlays/example"  // the example overlay
	namespace  = "arbor-system"      // arbor's own namespace
	saName     = "arbor"             // arbor's ServiceAccount
	fieldOwner = "arbor-deploy-test" // field manager of what the tests install as admin
)

// build runs kustomize on dir the way `kubectl kustomize` does and returns the objects.
func build(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := buildDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func buildDir(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(y, &m); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out, nil
}

// find returns the one object of kind and name in objs, failing t when absent.
func find(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the kustomize output", kind, name)
	return nil
}

// kinds lists "Kind/name" of objs, sorted, for messages.
func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}
