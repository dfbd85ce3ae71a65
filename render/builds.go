package render

import (
	"errors"
	"fmt"

	"github.com/arbordev/arbor/schema"
)

// ImageBuild is one image an environment runs that is made from a
// repository: a deployed service with `build:` or `has_repo: true`. The
// daemon builds it or waits for it, and renders again with the image pinned
// (ImageSettings.Pinned).
type ImageBuild struct {
	// App is the app whose repository the image is made from: the
	// environment's own app or an imported one.
	App     string
	Service string
	// Image is the reference render gives the service without a pin:
	// <registry>/<image or app/service>:<tag from the image settings>.
	Image string
	Build schema.BuildSpec
}

// Builds lists the images of in's environment made from a repository, in
// template order (the environment's app first, then its imports). It reads
// the configuration only: no render, no file of the tree.
func Builds(in Input) (builds []ImageBuild, err error) {
	defer func() {
		if p := recover(); p != nil {
			builds, err = nil, fmt.Errorf("render: internal error: %v", p)
		}
	}()
	if in.Config == nil || in.Config.Template == nil {
		return nil, errors.New("render: no configuration")
	}
	r := &renderer{in: in, owner: map[string]string{}, envHashes: map[string]string{}}
	r.start()
	if err := r.loadApps(); err != nil {
		return nil, fmt.Errorf("%s@%s: %w", r.env.App, in.Context.Branch, err)
	}
	for _, a := range r.apps {
		for _, s := range a.services {
			spec, ok := a.t.BuildOf(s)
			if !ok {
				continue
			}
			img, err := r.unpinnedImage(a, s)
			if err != nil {
				return nil, fmt.Errorf("%s@%s: services.%s.image: %w", r.env.App, in.Context.Branch, s.Name, err)
			}
			builds = append(builds, ImageBuild{App: a.name, Service: s.Name, Image: img, Build: spec})
		}
	}
	return builds, nil
}
