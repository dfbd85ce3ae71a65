package apply_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/apply"
)

// TestCompareEnvironments: two environments' objects compared by kind and
// name, their own namespaces, env ids and bookkeeping annotations left out,
// Secret values never shown.
func TestCompareEnvironments(t *testing.T) {
	env := func(ns, envID, image, password string, extra bool) apply.Rendered {
		objs := []*unstructured.Unstructured{
			u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns,
				"labels":      map[string]any{"arbor.dev/env": envID},
				"annotations": map[string]any{"arbor.dev/commit": "c-" + envID}}}),
			u(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "web", "namespace": ns},
				"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
					map[string]any{"name": "web", "image": image, "env": []any{map[string]any{"name": "HOST", "value": "web-" + envID + ".example.com"}}},
				}}}}}),
			u(map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "db", "namespace": ns},
				"stringData": map[string]any{"PASSWORD": password}}),
		}
		if extra {
			objs = append(objs, configMap("new", map[string]any{"a": "1"}))
		}
		return apply.Rendered{Objects: objs, Namespace: ns, EnvID: envID}
	}
	if d := apply.CompareEnvironments(env("shop-main", "main", "web:1", "s3cret", false), env("shop-feat-x", "feat-x", "web:1", "s3cret", false)); d != "" {
		t.Errorf("two environments that differ only in their names compare as different:\n%s", d)
	}
	d := apply.CompareEnvironments(env("shop-main", "main", "web:1", "s3cret", false), env("shop-feat-x", "feat-x", "web:2", "hunter2", true))
	for _, want := range []string{"-        image: web:1", "+        image: web:2", "+++ head/ConfigMap/new", "PASSWORD: (hidden, changed)"} {
		if !strings.Contains(d, want) {
			t.Errorf("the diff lacks %q:\n%s", want, d)
		}
	}
	for _, never := range []string{"s3cret", "hunter2", "arbor.dev/commit", "Namespace"} {
		if strings.Contains(d, never) {
			t.Errorf("the diff shows %q:\n%s", never, d)
		}
	}
}
