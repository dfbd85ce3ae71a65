package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/internal/testchart"
	"github.com/arbordev/arbor/internal/testcluster"
)

// writeChartRepo writes a repository whose template installs the local test
// chart (internal/testchart): a Deployment, a Service, and a ConfigMap from
// values with ${...}.
func writeChartRepo(t *testing.T, dir string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, ".release.yaml"), `app: chartcli
charts:
- name: web
  directory: chart
  values: preview.yaml
`)
	for p, content := range testchart.Files("chart") {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(p)), content)
	}
}

// TestApplyLocalChart takes a chart through arbor's engine on the real
// cluster with the command line: applied with the environment (Ready), a
// values change patches only the ConfigMap, an object deleted by hand comes
// back, a chart that renders a ClusterRole is refused with nothing applied,
// and delete removes everything.
func TestApplyLocalChart(t *testing.T) {
	cs := testcluster.Clientset(t)
	dir := t.TempDir()
	writeChartRepo(t, dir)
	branch := testcluster.Name("chart")
	args := func(verb string) []string {
		return []string{verb, dir, "--branch", branch, "--commit", "0123abc", "--timeout", "90s"}
	}
	code, out, errOut := arborOnCluster(t, args("apply")...)
	ns := namespaceFrom(t, errOut+out)
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	if code != exitOK || !strings.Contains(out, "Deployment/"+ns+"/chartcli-web created") || !strings.Contains(out, "ConfigMap/"+ns+"/chartcli-config created") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "chartcli-config", metav1.GetOptions{})
	if err != nil || cm.Data["branch"] != branch || cm.Labels["app.kubernetes.io/managed-by"] != "arbor" {
		t.Fatalf("ConfigMap from the chart: %+v, %v", cm, err)
	}

	edit(t, filepath.Join(dir, "chart", "values.yaml"), "greeting: hello", "greeting: bonjour")
	code, out, errOut = arborOnCluster(t, args("apply")...)
	if code != exitOK || !strings.Contains(out, "ConfigMap/"+ns+"/chartcli-config configured") ||
		strings.Contains(out, "Deployment/"+ns+"/chartcli-web configured") || strings.Contains(out, "Service/"+ns+"/chartcli-web configured") {
		t.Fatalf("apply of a values change: exit %d\n%s\n%s", code, out, errOut)
	}

	if err := cs.CoreV1().Services(ns).Delete(context.Background(), "chartcli-web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = arborOnCluster(t, args("apply")...)
	if code != exitOK || !strings.Contains(out, "Service/"+ns+"/chartcli-web created") {
		t.Fatalf("apply after a Service was deleted by hand: exit %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = arborOnCluster(t, args("delete")...)
	if code != exitOK {
		t.Fatalf("delete: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, err := cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace after delete: %v", err)
	}
}

// TestApplyChartClusterRoleRefused: a chart rendering a ClusterRole fails
// the render with an error naming the object; nothing is applied.
func TestApplyChartClusterRoleRefused(t *testing.T) {
	cs := testcluster.Clientset(t)
	dir := t.TempDir()
	writeChartRepo(t, dir)
	writeFile(t, filepath.Join(dir, "chart", "templates", "role.yaml"),
		"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: chartcli-reader}\nrules: []\n")
	branch := testcluster.Name("chart-refused")
	code, out, errOut := arborOnCluster(t, "apply", dir, "--branch", branch, "--commit", "0123abc", "--timeout", "60s")
	if code == exitOK || !strings.Contains(errOut, "charts.web: role.yaml") && !strings.Contains(errOut, "ClusterRole/chartcli-reader: cluster-scoped kind ClusterRole is not allowed") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out, "created") {
		t.Errorf("something was applied:\n%s", out)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(context.Background(), "chartcli-reader", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRole in the cluster: %v", err)
	}
}

// TestApplyChartForeignNamespaceRefused: a chart rendering an object into
// another namespace fails the render with an error naming the object and the
// namespace; nothing is applied, there or in the environment.
func TestApplyChartForeignNamespaceRefused(t *testing.T) {
	cs := testcluster.Clientset(t)
	other := testcluster.Namespace(t, cs)
	dir := t.TempDir()
	writeChartRepo(t, dir)
	writeFile(t, filepath.Join(dir, "chart", "templates", "foreign.yaml"),
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: chartcli-foreign, namespace: "+other+"}\ndata: {a: b}\n")
	branch := testcluster.Name("chart-foreign")
	code, out, errOut := arborOnCluster(t, "apply", dir, "--branch", branch, "--commit", "0123abc", "--timeout", "60s")
	want := `ConfigMap/chartcli-foreign: namespace "` + other + `" is not the environment's namespace`
	if code == exitOK || !strings.Contains(errOut, want) {
		t.Fatalf("apply: exit %d, want %q\n%s\n%s", code, want, out, errOut)
	}
	if strings.Contains(out, "created") {
		t.Errorf("something was applied:\n%s", out)
	}
	if _, err := cs.CoreV1().ConfigMaps(other).Get(context.Background(), "chartcli-foreign", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the foreign ConfigMap in the cluster: %v", err)
	}
}
