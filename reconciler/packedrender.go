package reconciler

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/render"
)

// packedRender is a render kept in memory with its objects as JSON: a
// thousand environments' objects as maps of maps held tens of megabytes
// that are read again only on a repair, a retry, a teardown or a comment.
// (Not gzipped: a gzip writer's own tables are a megabyte of garbage per
// render, which at 64 renders at once outweighed what it saved.)
type packedRender struct {
	env     *render.Environment // without Objects
	objects []byte
}

func packRender(env *render.Environment) (packedRender, error) {
	data, err := json.Marshal(env.Objects)
	if err != nil {
		return packedRender{}, fmt.Errorf("pack render: %w", err)
	}
	cp := *env
	cp.Objects = nil
	return packedRender{env: &cp, objects: data}, nil
}

// unpack returns a fresh copy of the render: its objects are new, the rest
// shared (read only). Nil when the objects cannot be read back.
func (p packedRender) unpack() *render.Environment {
	if p.env == nil {
		return nil
	}
	var objs []*unstructured.Unstructured
	if err := json.Unmarshal(p.objects, &objs); err != nil {
		return nil
	}
	cp := *p.env
	cp.Objects = objs
	return &cp
}
