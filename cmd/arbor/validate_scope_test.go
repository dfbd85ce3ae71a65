package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateScopeOfKinds validates repositories whose kustomize directory
// holds a cluster-scoped kind that Kubernetes has but render's old fixed list
// lacked (an error finding each), or a custom resource whose scope cannot
// be known offline (a warning finding, still valid).
func TestValidateScopeOfKinds(t *testing.T) {
	cases := []struct {
		kind, object string
		code         int
		want         string
	}{
		{"IPAddress", "apiVersion: networking.k8s.io/v1\nkind: IPAddress\nmetadata: {name: 10.96.0.99}\n", exitNo,
			`@arbor-validate/sample: kustomize[0] "k": IPAddress/10.96.0.99: cluster-scoped kind IPAddress is not allowed`},
		{"ServiceCIDR", "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: evil}\n", exitNo,
			`kustomize[0] "k": ServiceCIDR/evil: cluster-scoped kind ServiceCIDR is not allowed`},
		{"VolumeAttributesClass", "apiVersion: storage.k8s.io/v1\nkind: VolumeAttributesClass\nmetadata: {name: fast}\ndriverName: x\n", exitNo,
			`VolumeAttributesClass/fast: cluster-scoped kind VolumeAttributesClass is not allowed`},
		{"ResourceSlice", "apiVersion: resource.k8s.io/v1\nkind: ResourceSlice\nmetadata: {name: s}\n", exitNo,
			`ResourceSlice/s: cluster-scoped kind ResourceSlice is not allowed`},
		{"custom resource", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\n", exitOK,
			`warning: render: "Widget/w1": the scope of kind "Widget" (apiVersion "example.com/v1") could not be checked`},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, ".release.yaml"), "kustomize:\n- path: k\n")
			writeFile(t, filepath.Join(dir, "k", "kustomization.yaml"), "resources: [object.yaml]\n")
			writeFile(t, filepath.Join(dir, "k", "object.yaml"), c.object)
			var out bytes.Buffer
			err := runValidate(&out, &bytes.Buffer{}, []string{dir}, validateOptions{format: "text"})
			if got := exitCode(err); got != c.code {
				t.Fatalf("exit %d (%v), want %d\n%s", got, err, c.code, out.String())
			}
			if !strings.Contains(out.String(), c.want) {
				t.Errorf("output lacks %q:\n%s", c.want, out.String())
			}
			if n := strings.Count(out.String(), "\n"); c.code == exitOK && n != 1 {
				t.Errorf("want the warning once, got %d lines:\n%s", n, out.String())
			}
		})
	}
}

// TestRenderWarnsOfUnknownScope renders a custom resource with arbor render:
// the object is printed, and stderr says its scope could not be checked.
func TestRenderWarnsOfUnknownScope(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, ".release.yaml"), "kustomize:\n- path: k\n")
	writeFile(t, filepath.Join(dir, "k", "kustomization.yaml"), "resources: [object.yaml]\n")
	writeFile(t, filepath.Join(dir, "k", "object.yaml"), "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\n")
	stdout, stderr, code := runArbor(t, "render", "--branch", "main", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `warning: "Widget/w1": the scope of kind "Widget" (apiVersion "example.com/v1") could not be checked`
	if !strings.Contains(stderr, want) || !strings.Contains(stdout, "kind: Widget") {
		t.Errorf("stderr %q lacks %q, or stdout lacks the Widget:\n%s", stderr, want, stdout)
	}
}
