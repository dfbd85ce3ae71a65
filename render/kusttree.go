package render

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/yaml"

	"github.com/arbordev/arbor/schema"
)

// Defaults of KustomizeLimits (docs/configuration.md, docs/security.md).
const (
	DefaultKustomizeMaxFileBytes  = 4 << 20
	DefaultKustomizeMaxTotalBytes = 32 << 20
	DefaultKustomizeTimeout       = 30 * time.Second
	// maxKustomizeFiles bounds the files and directories one build may name,
	// so that a kustomization listing the same tiny file a million times is
	// refused like a large one.
	maxKustomizeFiles = 10000
)

// KustomizeLimits bound what the kustomize directories of one render may
// read and how long one build may take. Zero fields take the defaults.
type KustomizeLimits struct {
	MaxFileBytes  int64         // one file a kustomization references
	MaxTotalBytes int64         // every file read for kustomize in one render
	Timeout       time.Duration // one build, waiting for another build included
}

func (l KustomizeLimits) orDefaults() KustomizeLimits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultKustomizeMaxFileBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultKustomizeMaxTotalBytes
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultKustomizeTimeout
	}
	return l
}

// kustFileNames are the names kustomize looks for in a directory, in its order.
var kustFileNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// kustTree builds the in-memory file system one kustomize build runs on. It
// walks the kustomization and what it references, transitively, and copies
// only those files, each one within the size limits, each YAML file kustomize
// will parse within the alias budget shared by the build.
//
// Why kustomize cannot reach the network or read outside the repository,
// from kustomize's loader (api/internal/loader, v0.21): every file goes
// through FileLoader.Load, which does an HTTP GET when url.Parse finds an
// http or https scheme (url.Parse lower-cases it, so HTTP:// too), and every
// base or component through FileLoader.New, which clones with the git binary
// when git.NewRepoSpecFromURL accepts the string (a scheme such as https://
// or file:// in any case, a "git::" prefix, a user@ prefix, or github.com/).
// Only then do they fall back to the file system, and krusty takes no other
// loader. So the file system alone cannot stop them: what must be controlled
// is the string. kustomize is only ever given kustomizations arbor wrote:
// each one is decoded with kustomize's own decoder (unknown fields refused;
// case-insensitive, so RESOURCES is resources), every field that names a
// file (kustTree.rewrite) is resolved here to a regular file or directory of
// the repository or refused, and written back as a relative path starting
// with "." (local). Both parsers reject such a string at its first byte: a
// URL scheme and a git user name must start with a letter, and "." matches
// none of the git prefixes. The fields whose content could name files in ways
// arbor does not follow (generators, transformers, validators, helm) are
// refused. The in-memory file system holds only the copied files, so
// whatever else kustomize looks for is not there.
type kustTree struct {
	tree   fs.FS
	mem    filesys.FileSystem
	lim    KustomizeLimits
	read   *int64 // bytes read for kustomize so far in this render
	budget schema.AliasBudget
	files  map[string]bool // repository paths copied
	parsed map[string]bool // repository paths checked as YAML
	dirs   map[string]bool // kustomization directories walked
}

func newKustTree(tree fs.FS, lim KustomizeLimits, read *int64) *kustTree {
	return &kustTree{
		tree: tree, mem: filesys.MakeFsInMemory(), lim: lim, read: read,
		files: map[string]bool{}, parsed: map[string]bool{}, dirs: map[string]bool{},
	}
}

// kustomization copies the kustomization of dir, a clean repository path,
// rewritten, and everything it references.
func (t *kustTree) kustomization(dir string) error {
	if t.dirs[dir] {
		return nil // kustomize reports cycles itself
	}
	t.dirs[dir] = true
	if len(t.dirs)+len(t.files) > maxKustomizeFiles {
		return fmt.Errorf("%s: more than %d files and directories referenced", dir, maxKustomizeFiles)
	}
	file, err := t.kustFile(dir)
	if err != nil {
		return err
	}
	data, err := t.readFile(file)
	if err != nil {
		return err
	}
	if err := t.budget.CheckYAML(file, data); err != nil {
		return err
	}
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := t.rewrite(dir, &k); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	out, err := kyaml.Marshal(&k)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return t.mem.WriteFile("/"+file, out)
}

// kustFile finds the one kustomization file of dir.
func (t *kustTree) kustFile(dir string) (string, error) {
	var found []string
	for _, n := range kustFileNames {
		p := path.Join(dir, n)
		if st, err := fs.Lstat(t.tree, p); err == nil && st.Mode().IsRegular() {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s: no kustomization.yaml, kustomization.yml or Kustomization in the directory", dir)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s: more than one kustomization file (%s)", dir, strings.Join(found, ", "))
}

// rewrite checks every field of k that names a file or directory, copies
// what it names, and replaces the name with its checked relative form.
func (t *kustTree) rewrite(dir string, k *types.Kustomization) error {
	if len(k.HelmCharts) > 0 || k.HelmGlobals != nil || len(k.HelmChartInflationGenerator) > 0 {
		return errors.New("helmCharts: helm charts are not supported (they need network access and the helm binary)")
	}
	for _, f := range []struct {
		name string
		list []string
	}{{"generators", k.Generators}, {"transformers", k.Transformers}, {"validators", k.Validators}} {
		if len(f.list) > 0 {
			return fmt.Errorf("%s: not supported (plugin configurations can name files and URLs in fields arbor does not check)", f.name)
		}
	}
	for key := range k.OpenAPI {
		if key != "path" && key != "version" {
			return fmt.Errorf("openapi: unknown key %q", key)
		}
	}
	if p, ok := k.OpenAPI["path"]; ok {
		r, err := t.yamlFile(dir, "openapi.path", p)
		if err != nil {
			return err
		}
		k.OpenAPI["path"] = r
	}
	for _, f := range []struct {
		name string
		list []string
		walk func(dir, field, entry string) (string, error)
	}{
		{"resources", k.Resources, t.resource},
		{"bases", k.Bases, t.resource},
		{"components", k.Components, t.component},
		{"crds", k.Crds, t.yamlFile},
		{"configurations", k.Configurations, t.yamlFile},
	} {
		for i, e := range f.list {
			r, err := f.walk(dir, fmt.Sprintf("%s[%d]", f.name, i), e)
			if err != nil {
				return err
			}
			f.list[i] = r
		}
	}
	if err := t.patches(dir, k); err != nil {
		return err
	}
	for i := range k.Replacements {
		if k.Replacements[i].Path == "" {
			continue
		}
		r, err := t.yamlFile(dir, fmt.Sprintf("replacements[%d].path", i), k.Replacements[i].Path)
		if err != nil {
			return err
		}
		k.Replacements[i].Path = r
	}
	for i := range k.ConfigMapGenerator {
		if err := t.sources(dir, fmt.Sprintf("configMapGenerator[%d]", i), &k.ConfigMapGenerator[i].KvPairSources); err != nil {
			return err
		}
	}
	for i := range k.SecretGenerator {
		if err := t.sources(dir, fmt.Sprintf("secretGenerator[%d]", i), &k.SecretGenerator[i].KvPairSources); err != nil {
			return err
		}
	}
	return nil
}

// patches checks patches, patchesJson6902 and patchesStrategicMerge. A
// strategic-merge entry is a file or an inline patch, and kustomize loads an
// entry it cannot parse as a path: each one is moved, in order, to the front
// of patches (which kustomize applies right after them) as a path or as an
// inline patch, as `kustomize edit fix` does.
func (t *kustTree) patches(dir string, k *types.Kustomization) error {
	var moved []types.Patch
	for i, e := range k.PatchesStrategicMerge {
		field := fmt.Sprintf("patchesStrategicMerge[%d]", i)
		if p, _, err := local(dir, string(e)); err == nil && t.isFile(p) {
			r, err := t.yamlFile(dir, field, string(e))
			if err != nil {
				return err
			}
			moved = append(moved, types.Patch{Path: r})
			continue
		}
		if err := t.budget.CheckYAML(path.Join(dir, field), []byte(e)); err != nil {
			return fmt.Errorf("%s: not a file of the repository, nor an inline patch: %w", field, err)
		}
		moved = append(moved, types.Patch{Patch: string(e)})
	}
	k.Patches = append(moved, k.Patches...)
	k.PatchesStrategicMerge = nil
	for _, f := range []struct {
		name string
		list []types.Patch
	}{{"patches", k.Patches}, {"patchesJson6902", k.PatchesJson6902}} {
		list := f.list
		for i := range list {
			field := fmt.Sprintf("%s[%d]", f.name, i)
			if list[i].Path != "" {
				r, err := t.yamlFile(dir, field+".path", list[i].Path)
				if err != nil {
					return err
				}
				list[i].Path = r
			}
			if list[i].Patch != "" {
				if err := t.budget.CheckYAML(path.Join(dir, field+".patch"), []byte(list[i].Patch)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sources checks the files of a ConfigMap or Secret generator: their content
// becomes data, never parsed as YAML.
func (t *kustTree) sources(dir, field string, s *types.KvPairSources) error {
	for i, e := range s.FileSources {
		key, file, ok := strings.Cut(e, "=")
		if !ok {
			key, file = path.Base(e), e
		}
		f := fmt.Sprintf("%s.files[%d]", field, i)
		if key == "" || strings.Contains(file, "=") {
			return fmt.Errorf("%s: %q: want FILE or KEY=FILE", f, e)
		}
		r, err := t.dataFile(dir, f, file)
		if err != nil {
			return err
		}
		s.FileSources[i] = key + "=" + r
	}
	for i, e := range s.EnvSources {
		r, err := t.dataFile(dir, fmt.Sprintf("%s.envs[%d]", field, i), e)
		if err != nil {
			return err
		}
		s.EnvSources[i] = r
	}
	if s.EnvSource != "" {
		r, err := t.dataFile(dir, field+".env", s.EnvSource)
		if err != nil {
			return err
		}
		s.EnvSource = r
	}
	return nil
}

// resource is a resources or bases entry: a YAML file or a kustomization directory.
func (t *kustTree) resource(dir, field, entry string) (string, error) {
	p, r, err := local(dir, entry)
	if err != nil {
		return "", fmt.Errorf("%s: %q: %w", field, entry, err)
	}
	if t.isDir(p) {
		return r, t.kustomization(p)
	}
	return t.yamlFile(dir, field, entry)
}

// component is a components entry: a kustomization directory.
func (t *kustTree) component(dir, field, entry string) (string, error) {
	p, r, err := local(dir, entry)
	if err != nil {
		return "", fmt.Errorf("%s: %q: %w", field, entry, err)
	}
	if !t.isDir(p) {
		return "", fmt.Errorf("%s: %q: %w", field, entry, errNotInRepo)
	}
	return r, t.kustomization(p)
}

// yamlFile copies a file kustomize parses as YAML, charging the alias budget.
func (t *kustTree) yamlFile(dir, field, entry string) (string, error) {
	p, r, err := t.copyFile(dir, field, entry)
	if err != nil || t.parsed[p] {
		return r, err
	}
	t.parsed[p] = true
	b, err := t.mem.ReadFile("/" + p)
	if err != nil {
		return "", err
	}
	return r, t.budget.CheckYAML(p, b)
}

// dataFile copies a file kustomize reads as data.
func (t *kustTree) dataFile(dir, field, entry string) (string, error) {
	_, r, err := t.copyFile(dir, field, entry)
	return r, err
}

var errNotInRepo = errors.New("not a file or directory of the repository (kustomize builds read the repository only: remote bases and URLs are refused)")

// copyFile copies the regular file entry names into the in-memory file
// system, within the limits, and returns its repository path and checked form.
func (t *kustTree) copyFile(dir, field, entry string) (string, string, error) {
	p, r, err := local(dir, entry)
	if err != nil {
		return "", "", fmt.Errorf("%s: %q: %w", field, entry, err)
	}
	if t.files[p] {
		return p, r, nil
	}
	if !t.isFile(p) {
		return "", "", fmt.Errorf("%s: %q: %w", field, entry, errNotInRepo)
	}
	t.files[p] = true
	if len(t.dirs)+len(t.files) > maxKustomizeFiles {
		return "", "", fmt.Errorf("%s: more than %d files and directories referenced", p, maxKustomizeFiles)
	}
	b, err := t.readFile(p)
	if err != nil {
		return "", "", err
	}
	if err := t.mem.MkdirAll("/" + path.Dir(p)); err != nil {
		return "", "", err
	}
	return p, r, t.mem.WriteFile("/"+p, b)
}

// readFile reads a regular file of the repository within the per-file and
// per-render limits, naming the file and the limit it would pass.
func (t *kustTree) readFile(p string) ([]byte, error) {
	f, err := t.tree.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := t.fits(p, st.Size()); err != nil {
		return nil, err
	}
	// The bytes read, not the size reported, are what count.
	b, err := io.ReadAll(io.LimitReader(f, t.lim.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if err := t.fits(p, int64(len(b))); err != nil {
		return nil, err
	}
	*t.read += int64(len(b))
	return b, nil
}

// fits checks that n more bytes, of file p, stay within the limits.
func (t *kustTree) fits(p string, n int64) error {
	if n > t.lim.MaxFileBytes {
		return fmt.Errorf("%s: %d bytes, over the limit of %d bytes for one file a kustomization reads (kustomize.max_file_size)", p, n, t.lim.MaxFileBytes)
	}
	if *t.read+n > t.lim.MaxTotalBytes {
		return fmt.Errorf("%s: reading it brings the files read for kustomize in this render to %d bytes, over the limit of %d bytes (kustomize.max_total_size)", p, *t.read+n, t.lim.MaxTotalBytes)
	}
	return nil
}

func (t *kustTree) isFile(p string) bool {
	st, err := fs.Lstat(t.tree, p)
	return err == nil && st.Mode().IsRegular()
}

func (t *kustTree) isDir(p string) bool {
	st, err := fs.Lstat(t.tree, p)
	return err == nil && st.IsDir()
}

// local resolves entry, a path written in the kustomization of dir, to a
// clean repository path p and to the form r kustomize is given: relative to
// dir and starting with "." ("./x", "../x"). kustomize takes a string for a
// URL only when it starts with a letter (a scheme, a user@ or github.com/),
// so r is always read from the file system.
func local(dir, entry string) (p, r string, err error) {
	if entry == "" {
		return "", "", errors.New("empty path")
	}
	if path.IsAbs(entry) {
		return "", "", errors.New("absolute paths are not allowed")
	}
	r = path.Clean(entry)
	p = path.Join(dir, r)
	if p == ".." || strings.HasPrefix(p, "../") || !fs.ValidPath(p) {
		return "", "", errors.New("path leaves the repository")
	}
	if !strings.HasPrefix(r, ".") {
		r = "./" + r
	}
	return p, r, nil
}
