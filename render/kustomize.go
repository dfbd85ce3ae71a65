package render

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/yaml"
)

// maxKustomizeFile is the largest file copied for kustomize builds.
const maxKustomizeFile = 8 << 20

// krustyMu serializes kustomize builds: krusty is not safe for concurrent use.
var krustyMu sync.Mutex

// kustomizationNames are the file names kustomize reads as a kustomization.
var kustomizationNames = map[string]bool{"kustomization.yaml": true, "kustomization.yml": true, "Kustomization": true}

// renderKustomize builds every kustomize directory of every app (docs/release-yaml.md#kustomize-directories)
// and adds the output, confined to the environment.
func (r *renderer) renderKustomize() error {
	for _, a := range r.apps {
		if len(a.t.Kustomize) == 0 {
			continue
		}
		if a.tree == nil {
			return errors.New("kustomize: no repository tree to build from")
		}
		mem, err := memFS(a.tree)
		if err != nil {
			return fmt.Errorf("kustomize: reading the repository: %w", err)
		}
		for i, k := range a.t.Kustomize {
			field := fmt.Sprintf("kustomize[%d] %q", i, k.Path)
			dir, err := repoDir(k.Path)
			if err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
			objs, err := buildKustomize(mem, dir)
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

// repoDir is a kustomize path as an absolute path of the in-memory tree.
func repoDir(p string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "./"), "/"))
	if clean == ".." || strings.HasPrefix(clean, "../") || !fs.ValidPath(clean) {
		return "", errors.New("path leaves the repository")
	}
	return "/" + clean, nil
}

// memFS copies the branch's tree into kustomize's in-memory file system,
// rooted at "/", and checks every kustomization in it for remote references.
func memFS(tree fs.FS) (filesys.FileSystem, error) {
	mem := filesys.MakeFsInMemory()
	var kusts []string
	err := fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == ".git" {
				return fs.SkipDir
			}
			return mem.MkdirAll("/" + p)
		}
		if !d.Type().IsRegular() {
			return nil // symlinks and other special files are not followed
		}
		if info, err := d.Info(); err != nil {
			return err
		} else if info.Size() > maxKustomizeFile {
			return nil // larger than anything kustomize can put in an object
		}
		b, err := fs.ReadFile(tree, p)
		if err != nil {
			return err
		}
		if kustomizationNames[path.Base(p)] {
			kusts = append(kusts, p)
		}
		return mem.WriteFile("/"+p, b)
	})
	if err != nil {
		return nil, err
	}
	for _, k := range kusts {
		if err := checkKustomization(mem, "/"+k); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return mem, nil
}

// checkKustomization refuses what would make kustomize reach outside the
// repository: remote resources (git or http), helm charts, and local paths
// that do not exist (kustomize would try them as remote URLs).
func checkKustomization(mem filesys.FileSystem, file string) error {
	b, err := mem.ReadFile(file)
	if err != nil {
		return err
	}
	var k map[string]any
	if err := yaml.Unmarshal(b, &k); err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	dir := path.Dir(file)
	for _, key := range []string{"helmCharts", "helmGlobals", "helmChartInflationGenerator"} {
		if _, ok := k[key]; ok {
			return fmt.Errorf("%s: helm charts are not supported (they need network access and the helm binary)", key)
		}
	}
	for _, key := range []string{"resources", "components", "bases", "crds", "configurations", "generators", "transformers", "validators"} {
		list, _ := k[key].([]any)
		for _, e := range list {
			s, ok := e.(string)
			if !ok || strings.Contains(s, "\n") {
				continue // inline configuration
			}
			if err := localPath(mem, dir, s); err != nil {
				return fmt.Errorf("%s: %q: %w", key, s, err)
			}
		}
	}
	return walkPaths(k, func(field, s string) error {
		if isRemote(s) {
			return fmt.Errorf("%s: %q: remote files are not allowed", field, s)
		}
		return nil
	})
}

func localPath(mem filesys.FileSystem, dir, p string) error {
	if isRemote(p) {
		return errors.New("remote resources are not allowed")
	}
	full := path.Join(dir, p)
	if path.IsAbs(p) || !strings.HasPrefix(full+"/", "/") {
		return errors.New("path leaves the repository")
	}
	if !mem.Exists(full) {
		return errors.New("no such file or directory in the repository (remote resources are not allowed)")
	}
	return nil
}

func isRemote(s string) bool {
	for _, p := range []string{"http://", "https://", "git::", "git@", "ssh://", "github.com/", "gitlab.com/", "bitbucket.org/", "file://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// walkPaths calls f for every string in the kustomization, with its key.
func walkPaths(v any, f func(field, s string) error) error {
	var walk func(field string, v any) error
	walk = func(field string, v any) error {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if err := walk(k, e); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range x {
				if err := walk(field, e); err != nil {
					return err
				}
			}
		case string:
			return f(field, x)
		}
		return nil
	}
	return walk("", v)
}

// buildKustomize runs krusty on one directory, serialized and panic-safe.
func buildKustomize(mem filesys.FileSystem, dir string) (out []*unstructured.Unstructured, err error) {
	krustyMu.Lock()
	defer krustyMu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("kustomize failed: %v", p)
		}
	}()
	opts := krusty.MakeDefaultOptions() // plugins disabled, loads restricted to the root
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
