package render

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kyaml "sigs.k8s.io/yaml"

	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	chartloader "helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/ignore"

	"github.com/arbordev/arbor/internal/repofs"
)

// loadChartDir loads the chart in dir of the repository tree. Every file is
// read with repofs.ReadFile, so the repository's rules hold (no link out of
// the repository, regular files only) within the chart limits; .helmignore
// is honoured as helm does. Archives under charts/ are checked like remote
// archives before Helm's loader opens them.
func loadChartDir(tree fs.FS, dir string, lim ChartLimits, read *int64) (*chartv2.Chart, error) {
	rules := ignore.Empty()
	if data, err := repofs.ReadFile(tree, path.Join(dir, ignore.HelmIgnore), lim.MaxFileBytes); err == nil {
		if rules, err = ignore.Parse(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%s: %w", ignore.HelmIgnore, err)
		}
	}
	rules.AddDefaults()
	var files []*archive.BufferedFile
	err := fs.WalkDir(tree, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		if rel == "" {
			return nil
		}
		info, err := fs.Stat(tree, p) // follows links inside the repository, refuses others
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if d.Type()&fs.ModeSymlink != 0 && info.IsDir() {
			return fmt.Errorf("%s: a symbolic link to a directory is not followed in a chart", p)
		}
		if rules.Ignore(rel, info) {
			if info.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if info.IsDir() {
			return nil
		}
		if len(files) >= maxChartFiles {
			return fmt.Errorf("%s: the chart has more than %d files", dir, maxChartFiles)
		}
		data, err := repofs.ReadFile(tree, p, lim.MaxFileBytes)
		if err != nil {
			return err
		}
		if err := chargeRead(read, int64(len(data)), lim); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if strings.HasPrefix(rel, "charts/") && strings.HasSuffix(rel, ".tgz") {
			if err := checkArchive(data, lim, read); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		files = append(files, &archive.BufferedFile{Name: rel, Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	c, err := chartloader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return c, nil
}

// loadChartArchive loads a packaged chart (.tgz) after checking, with its
// own bounded reader, that it and every archive inside it stay within the
// limits: Helm's loader has only a process-wide size ceiling.
func loadChartArchive(data []byte, lim ChartLimits, read *int64) (*chartv2.Chart, error) {
	if err := chargeRead(read, int64(len(data)), lim); err != nil {
		return nil, err
	}
	if err := checkArchive(data, lim, read); err != nil {
		return nil, err
	}
	c, err := chartloader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("chart archive: %w", err)
	}
	return c, nil
}

// checkArchive reads a gzip'd tar through, charging each entry's bytes to
// the render's total, refusing entries that are not files or directories,
// files over the per-file limit, paths that climb out, and too many files.
// Archives inside (dependencies) are checked the same way.
func checkArchive(data []byte, lim ChartLimits, read *int64) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("chart archive: %w", err)
	}
	tr := tar.NewReader(zr)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("chart archive: %w", err)
		}
		if n >= maxChartFiles {
			return fmt.Errorf("chart archive: more than %d entries", maxChartFiles)
		}
		name := path.Clean(h.Name)
		if path.IsAbs(h.Name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("chart archive: %s: path leaves the archive", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader, tar.TypeXHeader:
			continue
		case tar.TypeReg:
		default:
			return fmt.Errorf("chart archive: %s: only files and directories are allowed", h.Name)
		}
		b, err := repofs.ReadAll(tr, lim.MaxFileBytes)
		if err != nil {
			return fmt.Errorf("chart archive: %s: %w", h.Name, err)
		}
		if err := chargeRead(read, int64(len(b)), lim); err != nil {
			return fmt.Errorf("chart archive: %s: %w", h.Name, err)
		}
		if strings.HasSuffix(name, ".tgz") && strings.Contains(name, "/charts/") {
			if err := checkArchive(b, lim, read); err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		}
	}
}

// checkValuesSchema checks the values of c and of each dependency against
// their values.schema.json, as helm does, but compiled with no loader: a
// $ref to anything outside the schema document fails instead of reading a
// URL or a file of the host.
func checkValuesSchema(c *chartv2.Chart, values any) error {
	vals, _ := values.(map[string]any)
	if vals == nil {
		if v, ok := values.(interface{ AsMap() map[string]any }); ok {
			vals = v.AsMap()
		}
	}
	if len(c.Schema) > 0 {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(c.Schema))
		if err != nil {
			return fmt.Errorf("chart %s: values.schema.json: %w", c.Name(), err)
		}
		comp := jsonschema.NewCompiler()
		comp.UseLoader(noLoader{})
		const url = "file:///values.schema.json"
		if err := comp.AddResource(url, doc); err != nil {
			return fmt.Errorf("chart %s: values.schema.json: %w", c.Name(), err)
		}
		sch, err := comp.Compile(url)
		if err != nil {
			return fmt.Errorf("chart %s: values.schema.json: %w", c.Name(), err)
		}
		if err := sch.Validate(jsonValue(vals)); err != nil {
			return fmt.Errorf("chart %s: values do not match values.schema.json: %w", c.Name(), err)
		}
	}
	for _, d := range c.Dependencies() {
		sub, _ := vals[d.Name()].(map[string]any)
		if sub == nil {
			sub = map[string]any{}
		}
		if err := checkValuesSchema(d, sub); err != nil {
			return err
		}
	}
	return nil
}

// jsonValue turns values into what the validator takes (JSON's types).
func jsonValue(v map[string]any) any {
	b, err := kyaml.Marshal(v)
	if err != nil {
		return v
	}
	j, err := kyaml.YAMLToJSON(b)
	if err != nil {
		return v
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return v
	}
	return out
}

// noLoader refuses every external schema reference.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s: values.schema.json may not refer to other documents", url)
}

// decodeYAMLObjects decodes the documents of a rendered manifest file.
func decodeYAMLObjects(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, doc := range splitYAMLDocs(data) {
		j, err := kyaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if t := bytes.TrimSpace(j); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// splitYAMLDocs splits a multi-document YAML file on its "---" lines.
func splitYAMLDocs(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		t := bytes.TrimRight(line, " \t\r\n")
		if bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	return append(docs, cur.Bytes())
}
