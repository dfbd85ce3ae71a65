package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"
)

// TestValidateCharts: a local chart is rendered and its values checked
// against values.schema.json; a remote one is checked by reference only,
// unless --fetch-charts fetches it (here from a loopback chart repository).
func TestValidateCharts(t *testing.T) {
	repoDir := t.TempDir()
	c := &chartv2.Chart{
		Metadata: &chartv2.Metadata{APIVersion: chartv2.APIVersionV2, Name: "remote", Version: "1.0.0"},
		Templates: []*chartcommon.File{{Name: "templates/cm.yaml",
			Data: []byte("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: remote}\n")}},
	}
	if _, err := chartutil.Save(c, repoDir); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	defer srv.Close()
	idx, err := repov1.IndexDirectory(repoDir, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(repoDir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	local := filepath.Join(root, "local")
	writeFile(t, filepath.Join(local, ".release.yaml"), "charts:\n- name: web\n  directory: chart\n  values: preview.yaml\n")
	writeFile(t, filepath.Join(local, "chart", "Chart.yaml"), "apiVersion: v2\nname: web\nversion: 0.1.0\n")
	writeFile(t, filepath.Join(local, "chart", "values.schema.json"), `{"properties": {"replicas": {"type": "integer"}}}`)
	writeFile(t, filepath.Join(local, "chart", "preview.yaml"), "replicas: many\n")
	writeFile(t, filepath.Join(local, "chart", "templates", "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n")
	remote := filepath.Join(root, "remote")
	writeFile(t, filepath.Join(remote, ".release.yaml"), "charts:\n- name: r\n  repo_url: "+srv.URL+"\n  install: x/remote\n  version: 1.0.0\n")

	run := func(dir string, o validateOptions) (string, error) {
		var out bytes.Buffer
		o.format, o.ctx, o.chartCache = "text", context.Background(), t.TempDir()
		err := runValidate(&out, &bytes.Buffer{}, []string{dir}, o)
		return out.String(), err
	}
	out, err := run(local, validateOptions{})
	if err == nil || !strings.Contains(out, "values do not match values.schema.json") {
		t.Errorf("local chart, bad values: err %v, out:\n%s", err, out)
	}
	out, err = run(remote, validateOptions{})
	if err != nil || !strings.Contains(out, "checked by reference only") {
		t.Errorf("remote chart, no fetch: err %v, out:\n%s", err, out)
	}
	out, err = run(remote, validateOptions{fetchCharts: true})
	if err == nil || !strings.Contains(out, "ClusterRole/remote: cluster-scoped kind ClusterRole is not allowed") {
		t.Errorf("remote chart fetched: err %v, out:\n%s", err, out)
	}
	srv.Close()
	out, err = run(remote, validateOptions{fetchCharts: true})
	if err == nil || !strings.Contains(out, "charts[0]: fetching the chart") {
		t.Errorf("repository down, empty cache: err %v, out:\n%s", err, out)
	}
}
