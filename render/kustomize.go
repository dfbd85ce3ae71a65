package render

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/yaml"
)

// krustySlot serializes kustomize builds: krusty is not safe for concurrent
// use. A build holds it until krusty returns, even after its caller gave up
// (a goroutine cannot be stopped), so others wait for it with a deadline.
var krustySlot = make(chan struct{}, 1)

// renderKustomize builds every kustomize directory of every app
// (docs/release-yaml.md#kustomize-directories) and adds the output, confined
// to the environment. Each build runs on an in-memory copy of what its
// kustomization references (kusttree.go).
func (r *renderer) renderKustomize() error {
	lim := r.in.Context.Kustomize.orDefaults()
	var read int64 // bytes read for kustomize in this render
	for _, a := range r.apps {
		for i, k := range a.t.Kustomize {
			field := fmt.Sprintf("kustomize[%d] %q", i, k.Path)
			if a.tree == nil {
				return fmt.Errorf("%s: no repository tree to build from", field)
			}
			dir, err := repoDir(k.Path)
			if err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
			kt := newKustTree(a.tree, lim, &read)
			if err := kt.kustomization(dir); err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
			objs, err := buildKustomize(kt.mem, path.Join("/", dir), lim.Timeout)
			if err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
			for _, u := range objs {
				if err := r.confine(a, u); err != nil {
					return fmt.Errorf("%s: %w", field, err)
				}
				r.add(u.Object, "")
			}
		}
	}
	return nil
}

// repoDir is a kustomize path as a clean path of the repository.
func repoDir(p string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "./"), "/"))
	if clean == ".." || strings.HasPrefix(clean, "../") || !fs.ValidPath(clean) {
		return "", errors.New("path leaves the repository")
	}
	return clean, nil
}

// buildKustomize runs krusty on one directory, one build at a time, panic-safe,
// and gives up after timeout, waiting for the slot included.
func buildKustomize(mem filesys.FileSystem, dir string, timeout time.Duration) ([]*unstructured.Unstructured, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case krustySlot <- struct{}{}:
	case <-deadline.C:
		return nil, fmt.Errorf("another kustomize build still runs after %s (kustomize.timeout)", timeout)
	}
	type result struct {
		objs []*unstructured.Unstructured
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-krustySlot }()
		objs, err := runKrusty(mem, dir)
		done <- result{objs, err}
	}()
	select {
	case res := <-done:
		return res.objs, res.err
	case <-deadline.C:
		return nil, fmt.Errorf("the kustomize build did not finish within %s (kustomize.timeout)", timeout)
	}
}

// runKrusty runs krusty and converts its output; a panic is an error.
func runKrusty(mem filesys.FileSystem, dir string) (out []*unstructured.Unstructured, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("kustomize failed: %v", p)
		}
	}()
	opts := krusty.MakeDefaultOptions() // plugins and helm disabled, loads restricted to the root
	m, err := krusty.MakeKustomizer(opts).Run(mem, dir)
	if err != nil {
		return nil, err
	}
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			return nil, err
		}
		j, err := kyaml.YAMLToJSON(y)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, fmt.Errorf("%s: %w", res.CurId(), err)
		}
		out = append(out, u)
	}
	return out, nil
}

// confine puts a kustomize object in the environment: its namespace, labels
// and commit annotation, repo-built images re-tagged. Cluster-scoped kinds
// and other namespaces are refused unless the daemon config allows them.
func (r *renderer) confine(a *app, u *unstructured.Unstructured) error {
	id := u.GetKind() + "/" + u.GetName()
	if r.clusterScoped(u) {
		if !r.in.Context.AllowClusterScoped {
			return fmt.Errorf("%s: cluster-scoped kind %s is not allowed", id, u.GetKind())
		}
	} else {
		switch ns := u.GetNamespace(); {
		case ns == "" || ns == r.env.Namespace:
			u.SetNamespace(r.env.Namespace)
		case !r.in.Context.AllowForeignNamespaces:
			return fmt.Errorf("%s: namespace %q is not the environment's namespace %q", id, ns, r.env.Namespace)
		}
	}
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range r.labels {
		labels[k] = v
	}
	if a.imported {
		labels[LabelImportedFrom] = a.name
	}
	u.SetLabels(labels)
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationCommit] = a.commit
	u.SetAnnotations(ann)
	r.retag(a, u.Object)
	return nil
}

// retag replaces, in every container list of the object, images that name a
// repo-built service's image without a tag with the service's resolved image.
func (r *renderer) retag(a *app, v any) {
	built := map[string]string{}
	for _, s := range a.t.Services {
		if (s.HasRepo || s.Build != nil) && s.Image != "" && !imageHasTag(s.Image) {
			built[s.Image] = a.images[s.Name]
		}
	}
	if len(built) == 0 {
		return
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "containers" || k == "initContainers" {
					list, _ := e.([]any)
					for _, c := range list {
						cm, ok := c.(map[string]any)
						if !ok {
							continue
						}
						img, _ := cm["image"].(string)
						if to, ok := built[imageName(img)]; ok {
							cm["image"] = to
						}
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}
