package render

import (
	"fmt"

	"github.com/arbordev/arbor/schema"
)

// renderNamespace writes the environment's Namespace, first of its objects,
// with the labels and the branch, commit and template annotations.
func (r *renderer) renderNamespace() error {
	o := r.newObject(nil, "v1", "Namespace", r.env.Namespace, nil)
	ann := o["metadata"].(obj)["annotations"].(obj)
	ann[AnnotationBranch] = r.env.Branch
	ann[AnnotationTemplate] = r.env.Template
	ann[AnnotationConfig] = r.env.ConfigHash
	r.add(o, "")
	return nil
}

// renderLinks expands custom_links: the hostname variables and every
// injected variable (RELEASE_*, *_INGRESS_HOST, *_INGRESS_URL) may be used.
func (r *renderer) renderLinks() error {
	a := r.apps[0]
	vars := r.injectedVars(a)
	for i, l := range a.t.CustomLinks {
		u, err := expandVars(l.URL, func(n string) (string, bool) {
			switch n {
			case "env_id":
				return r.env.EnvID, true
			case "domain":
				return a.domain, true
			case "app":
				return a.name, true
			case "branch":
				return branchSlug(r.env.Branch), true
			}
			v, ok := vars[n]
			return v.value, ok && !v.secret
		}, true)
		if err != nil {
			return fmt.Errorf("custom_links[%d] %s: %w", i, l.Name, err)
		}
		r.env.Links = append(r.env.Links, schema.Link{Name: l.Name, URL: u})
	}
	return nil
}
