package render

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestBuildsAndPins lists a template's built images, then renders it with
// pins: the built services run the pinned image, the others what they name.
func TestBuildsAndPins(t *testing.T) {
	cfg := configFrom(t, `
services:
- {name: api, image: shop/api, has_repo: true}
- {name: web, build: {context: web, dockerfile: Dockerfile.prod}}
- {name: db, image: postgres:16}
builds:
- {name: api, dockerfile: docker/api.Dockerfile}
`, "")
	ctx := Context{App: "shop", AppFixed: true, Branch: "feature", Commit: "0123456789abcdef0123456789abcdef01234567",
		Image: ImageSettings{Registry: "registry.test/previews"}}
	builds, err := Builds(Input{Config: cfg, Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range builds {
		got = append(got, b.App+" "+b.Service+" "+b.Image+" "+b.Build.Context+" "+b.Build.Dockerfile)
	}
	want := []string{
		"shop api registry.test/previews/shop/api:0123456789abcdef0123456789abcdef01234567 . docker/api.Dockerfile",
		"shop web registry.test/previews/shop/web:0123456789abcdef0123456789abcdef01234567 web Dockerfile.prod",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Builds:\n got %q\nwant %q", got, want)
	}

	pin := "registry.test/previews/shop/web:arbor-k@sha256:" + strings.Repeat("a", 64)
	ctx.Image.Pinned = map[string]string{builds[1].Image: pin, "postgres:16": "evil@sha256:" + strings.Repeat("b", 64)}
	env, err := Render(Input{Config: cfg, Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]string{}
	for _, o := range env.Objects {
		if o.GetKind() != "Deployment" {
			continue
		}
		cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		images[o.GetName()] = cs[0].(map[string]any)["image"].(string)
	}
	if images["web"] != pin {
		t.Errorf("web runs %q; want the pin %q", images["web"], pin)
	}
	if images["api"] != builds[0].Image {
		t.Errorf("api (no pin given) runs %q; want %q", images["api"], builds[0].Image)
	}
	if images["db"] != "postgres:16" {
		t.Errorf("db (not built) runs %q; a pin must apply to built services only", images["db"])
	}
}
