package render

import (
	"strings"
	"testing"
	"testing/fstest"
)

// kustomizeOne is a repository whose kustomize directory k holds one object.
func kustomizeOne(object string) fstest.MapFS {
	return fstest.MapFS{
		"k/kustomization.yaml": {Data: []byte("resources: [object.yaml]\n")},
		"k/object.yaml":        {Data: []byte(object)},
	}
}

// TestClusterScopedKindsRefused renders a kustomize directory holding one
// cluster-scoped kind of Kubernetes' own API that the old fixed list lacked:
// each is refused unless the daemon allows cluster-scoped kinds, and then it
// gets no namespace.
func TestClusterScopedKindsRefused(t *testing.T) {
	cases := map[string]string{
		"IPAddress":             "apiVersion: networking.k8s.io/v1\nkind: IPAddress\nmetadata: {name: 10.96.0.99}\nspec: {parentRef: {resource: services, name: x, namespace: default}}\n",
		"ServiceCIDR":           "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: evil}\nspec: {cidrs: [10.200.0.0/16]}\n",
		"VolumeAttributesClass": "apiVersion: storage.k8s.io/v1\nkind: VolumeAttributesClass\nmetadata: {name: fast}\ndriverName: x.csi\n",
		"ResourceSlice":         "apiVersion: resource.k8s.io/v1\nkind: ResourceSlice\nmetadata: {name: slice}\nspec: {driver: x, pool: {name: p, resourceSliceCount: 1}, allNodes: true}\n",
		"Namespace":             "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n",
	}
	for kind, object := range cases {
		t.Run(kind, func(t *testing.T) {
			in := Input{Config: configFrom(t, "kustomize: [{path: k}]", ""), Tree: kustomizeOne(object), Context: Context{App: "a", Branch: "b"}}
			_, err := Render(in)
			want := "cluster-scoped kind " + kind + " is not allowed"
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `kustomize[0] "k"`) {
				t.Fatalf("err = %v, want it to name the kustomize path and say %q", err, want)
			}
			in.Context.AllowClusterScoped = true
			env, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range env.Objects[1:] {
				if o.GetKind() == kind && o.GetNamespace() != "" {
					t.Errorf("%s/%s got namespace %q", kind, o.GetName(), o.GetNamespace())
				}
			}
			if len(env.Warnings) > 0 {
				t.Errorf("warnings for a built-in kind: %q", env.Warnings)
			}
		})
	}
}

// TestNamespacedKindsKeepTheirPlace checks that built-in namespaced kinds,
// in another API version than the preferred one too, go into the
// environment's namespace without a warning.
func TestNamespacedKindsKeepTheirPlace(t *testing.T) {
	for _, object := range []string{
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\nspec: {podSelector: {}}\n",
		"apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec: {maxReplicas: 2, scaleTargetRef: {kind: Deployment, name: web}}\n",
	} {
		env, err := Render(Input{Config: configFrom(t, "kustomize: [{path: k}]", ""), Tree: kustomizeOne(object), Context: Context{App: "a", Branch: "b"}})
		if err != nil {
			t.Fatal(err)
		}
		last := env.Objects[len(env.Objects)-1]
		if last.GetNamespace() != env.Namespace || len(env.Warnings) > 0 {
			t.Errorf("%s: namespace %q (want %q), warnings %q", last.GetKind(), last.GetNamespace(), env.Namespace, env.Warnings)
		}
	}
}

// TestUnknownKindWarns renders a custom resource and a built-in kind under a
// wrong group: render cannot know their scope, so each is rendered and a
// warning says the scope was not checked.
func TestUnknownKindWarns(t *testing.T) {
	object := "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\n---\n" +
		"apiVersion: v1\nkind: ClusterRole\nmetadata: {name: admin2}\n"
	env, err := Render(Input{Config: configFrom(t, "kustomize: [{path: k}]", ""), Tree: kustomizeOne(object), Context: Context{App: "a", Branch: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Warnings) != 2 {
		t.Fatalf("warnings = %q, want one for Widget and one for ClusterRole in the core group", env.Warnings)
	}
	for i, want := range []string{`"Widget/w1": the scope of kind "Widget" (apiVersion "example.com/v1") could not be checked`, `"ClusterRole/admin2": the scope of kind "ClusterRole" (apiVersion "v1")`} {
		if !strings.Contains(env.Warnings[i], want) {
			t.Errorf("warning %d = %q, want it to contain %q", i, env.Warnings[i], want)
		}
	}
	errs, warnings := CheckTemplates(configFrom(t, "kustomize: [{path: k}]", ""), kustomizeOne(object), "a", "")
	if len(errs) > 0 || len(warnings) != 2 {
		t.Errorf("CheckTemplates: errors %v, warnings %q; want no error and each warning once", errs, warnings)
	}
}

// TestScopeTableHasTheNamedKinds guards the table against a regeneration
// that loses the kinds the old list missed (the cluster test compares it
// with discovery; this one runs without a cluster).
func TestScopeTableHasTheNamedKinds(t *testing.T) {
	for _, c := range []struct {
		apiVersion, kind string
		namespaced       bool
	}{
		{"networking.k8s.io/v1", "IPAddress", false},
		{"networking.k8s.io/v1", "ServiceCIDR", false},
		{"storage.k8s.io/v1", "VolumeAttributesClass", false},
		{"resource.k8s.io/v1", "ResourceSlice", false},
		{"apiextensions.k8s.io/v1", "CustomResourceDefinition", false},
		{"v1", "ConfigMap", true},
		{"apps/v1", "Deployment", true},
	} {
		ns, known := scopeOf(c.apiVersion, c.kind)
		if !known || ns != c.namespaced {
			t.Errorf("%s %s: namespaced=%v known=%v, want namespaced=%v", c.apiVersion, c.kind, ns, known, c.namespaced)
		}
	}
}
