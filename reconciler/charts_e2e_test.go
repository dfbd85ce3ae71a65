package reconciler_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/internal/testchart"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// hookChart is a local chart with a pre-install hook Job that must complete
// before the chart's Deployment is applied.
var hookChart = map[string]string{
	".release.yaml": `charts:
- name: site
  directory: chart
`,
	"chart/Chart.yaml":  "apiVersion: v2\nname: site\nversion: 0.1.0\n",
	"chart/values.yaml": "greeting: hello\n",
	"chart/templates/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
`,
	"chart/templates/migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: busybox:1.36, command: [sh, -c, "echo {{ .Values.greeting }}"]}]
`,
}

// TestDaemonDeploysLocalChart: the daemon renders a branch's local Helm
// chart and deploys it through its engine: the pre-install hook Job runs to
// completion before the chart's Deployment is created, and the environment
// becomes Ready.
func TestDaemonDeploysLocalChart(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, "")
	c := r.commit("chart", hookChart)
	d := startDaemon(t, newConfig(t, own, "apps:\n- {name: "+app+", repo: "+r.dir+", poll_interval: 1s}\ndefaults: {domain: test.local}\n"))
	env := d.waitReadyAt(app, "main", c, 120*time.Second)
	ctx := context.Background()
	deps, err := cs.AppsV1().Deployments(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil || len(deps.Items) != 1 {
		t.Fatalf("the chart's Deployment: %v, %v", deps, err)
	}
	jobs, err := cs.BatchV1().Jobs(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil || len(jobs.Items) != 1 {
		t.Fatalf("the hook Job: %v, %v", jobs, err)
	}
	job, dep := jobs.Items[0], deps.Items[0]
	if job.Status.Succeeded == 0 || job.Status.CompletionTime == nil {
		t.Fatalf("the hook Job did not complete: %+v", job.Status)
	}
	if dep.CreationTimestamp.Time.Before(job.Status.CompletionTime.Time) {
		t.Errorf("the Deployment was created at %s, before the pre-install hook completed at %s", dep.CreationTimestamp, job.Status.CompletionTime)
	}
}

// packagedChart packages a one-ConfigMap chart named name with the Helm SDK
// into dir and returns the archive's bytes.
func packagedChart(t *testing.T, dir, name string) []byte {
	t.Helper()
	c := &chartv2.Chart{
		Metadata: &chartv2.Metadata{APIVersion: chartv2.APIVersionV2, Name: name, Version: "0.1.0"},
		Templates: []*chartcommon.File{{Name: "templates/cm.yaml",
			Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-" + name + "}\ndata: {chart: " + name + "}\n")}},
	}
	file, err := chartutil.Save(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDaemonDeploysRemoteCharts: a branch names a chart from an HTTP chart
// repository and one from an OCI registry, both real servers on loopback
// that the app's chart_repositories allows: the daemon fetches both and the
// environment comes up Ready with their objects. A branch that names a
// repository the app does not allow fails with the reason and gets nothing;
// with the chart repository down a push deploys from the cached chart and
// the status says so; the branch deleted, its environment goes.
func TestDaemonDeploysRemoteCharts(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)

	repoDir := t.TempDir()
	packagedChart(t, repoDir, "web")
	charts := httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	t.Cleanup(charts.Close)
	idx, err := repov1.IndexDirectory(repoDir, charts.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(repoDir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	client, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(packagedChart(t, t.TempDir(), "api"), host+"/charts/api:0.1.0"); err != nil {
		t.Fatalf("push the OCI chart: %v", err)
	}

	r := newRepo(t, webApp)
	r.on("feature/charts")
	head := r.commit("remote charts", map[string]string{".release.yaml": `charts:
- name: web
  repo_url: ` + charts.URL + `
  add: local
  install: local/web
  version: 0.1.0
- name: api
  install: oci://` + host + `/charts/api
  version: 0.1.0
`})
	r.on("elsewhere")
	other := r.commit("a chart from a repository not allowed", map[string]string{".release.yaml": "charts:\n- name: x\n  repo_url: http://127.0.0.1:1/charts\n  install: x\n  version: 0.1.0\n"})
	cfg := "apps:\n- name: " + app + "\n  repo: " + r.dir + "\n  poll_interval: 1s\n  chart_repositories: [" + charts.URL + ", oci://" + host + "/charts]\n" +
		"chart_plain_http_hosts: [" + host + "]\ndefaults: {domain: test.local}\n"
	d := startDaemon(t, newConfig(t, own, cfg))
	env := d.waitReadyAt(app, "feature/charts", head, 120*time.Second)
	ctx := context.Background()
	for _, name := range []string{"web", "api"} {
		cms, err := cs.CoreV1().ConfigMaps(env.Namespace).List(ctx, metav1.ListOptions{})
		found := false
		for _, cm := range cms.Items {
			found = found || cm.Data["chart"] == name
		}
		if err != nil || !found {
			t.Errorf("no ConfigMap of the %s chart in %s (%v)", name, env.Namespace, err)
		}
	}
	failed := d.waitPhase(app, "elsewhere", reconciler.PhaseFailed, 60*time.Second)
	if !strings.Contains(failed.LastError, "not in the app's allowed chart repositories") || failed.Commit != other {
		t.Errorf("the branch naming a repository not allowed: %+v", failed)
	}
	if namespaceGone(cs, app+"-elsewhere") == false {
		t.Errorf("the branch naming a repository not allowed got a namespace")
	}

	// The chart repository down: a push still deploys, from the cached
	// chart, and the environment's status says so.
	charts.Close()
	r.on("feature/charts")
	next := r.commit("a push while the chart repository is down", map[string]string{"x.txt": "1"})
	again := d.waitReadyAt(app, "feature/charts", next, 120*time.Second)
	stale := false
	for _, w := range again.Warnings {
		stale = stale || strings.Contains(w, "chart web: rendered from the cached 0.1.0")
	}
	if !stale {
		t.Errorf("no warning of the chart rendered from the cache: %q", again.Warnings)
	}
	r.deleteBranch("feature/charts")
	eventually(t, 120*time.Second, "the deleted branch's environment gone", func() bool {
		_, err := cs.CoreV1().Namespaces().Get(ctx, env.Namespace, metav1.GetOptions{})
		return err != nil
	})
}

// valuesChart is the local test chart (internal/testchart), whose ConfigMap
// comes from its values, installed by the repository's template.
var valuesChart = func() map[string]string {
	files := testchart.Files("chart")
	files[".release.yaml"] = "charts:\n- name: site\n  directory: chart\n  values: preview.yaml\n"
	return files
}()

// TestDaemonChartValuesPushAndDrift: through the daemon, a push that
// changes a chart's values patches only the object whose rendering changed
// (the ConfigMap; the Deployment and Service are not written), and a chart
// object deleted by hand comes back.
func TestDaemonChartValuesPushAndDrift(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, "")
	c1 := r.commit("chart", valuesChart)
	d := startDaemon(t, newConfig(t, own, "apps:\n- {name: "+app+", repo: "+r.dir+", poll_interval: 1s}\ndefaults: {domain: test.local}\n"))
	env := d.waitReadyAt(app, "main", c1, 2*time.Minute)
	ctx := context.Background()
	ns := env.Namespace
	type seen struct{ cm, svc, depGen, depApplied string }
	look := func() seen {
		t.Helper()
		c, err1 := cs.CoreV1().ConfigMaps(ns).Get(ctx, app+"-config", metav1.GetOptions{})
		s, err2 := cs.CoreV1().Services(ns).Get(ctx, app+"-web", metav1.GetOptions{})
		dp, err3 := cs.AppsV1().Deployments(ns).Get(ctx, app+"-web", metav1.GetOptions{})
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("the chart's objects: %v, %v, %v", err1, err2, err3)
		}
		applied := ""
		for _, m := range dp.ManagedFields {
			if m.Manager == apply.FieldManager && m.Time != nil {
				applied = m.Time.UTC().Format(time.RFC3339)
			}
		}
		return seen{c.ResourceVersion, s.ResourceVersion, strconv.FormatInt(dp.Generation, 10), applied}
	}
	before := look()
	time.Sleep(1100 * time.Millisecond) // managedFields times have a resolution of one second
	c2 := r.commit("values", map[string]string{"chart/values.yaml": "greeting: bonjour\n"})
	d.waitReadyAt(app, "main", c2, 2*time.Minute)
	after := look()
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, app+"-config", metav1.GetOptions{})
	if err != nil || cm.Data["greeting"] != "bonjour" || after.cm == before.cm {
		t.Fatalf("the ConfigMap after the values change: %v, %v", cm.Data, err)
	}
	if after.svc != before.svc {
		t.Errorf("the Service was written (resourceVersion %s → %s); its rendering did not change", before.svc, after.svc)
	}
	if after.depGen != before.depGen || after.depApplied != before.depApplied || before.depApplied == "" {
		t.Errorf("the Deployment was written (generation %s → %s, arbor's apply at %s → %s); its rendering did not change",
			before.depGen, after.depGen, before.depApplied, after.depApplied)
	}

	if err := cs.CoreV1().Services(ns).Delete(ctx, app+"-web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the chart's Service deleted by hand back", func() bool {
		_, err := cs.CoreV1().Services(ns).Get(ctx, app+"-web", metav1.GetOptions{})
		return err == nil
	})
}

// TestImportedAppsRemoteChart: an imported app's remote chart is fetched
// under the imported app's allow-list and deployed in the importer's
// environment.
func TestImportedAppsRemoteChart(t *testing.T) {
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	front, back := appName(t), appName(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	client, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(packagedChart(t, t.TempDir(), "cache"), host+"/charts/cache:0.1.0"); err != nil {
		t.Fatalf("push the OCI chart: %v", err)
	}
	br := newRepo(t, "charts:\n- name: cache\n  install: oci://"+host+"/charts/cache\n  version: 0.1.0\n")
	fr := newRepo(t, "app_imports:\n- name: "+back+"\nservices:\n- name: web\n  image: web:1\n")
	cfg := "apps:\n- name: " + front + "\n  repo: " + fr.dir + "\n  poll_interval: 1s\n" +
		"- name: " + back + "\n  repo: " + br.dir + "\n  poll_interval: 1s\n  allow_import_by: [" + front + "]\n  chart_repositories: [oci://" + host + "/charts]\n" +
		"chart_plain_http_hosts: [" + host + "]\ndefaults: {domain: test.local}\n"
	d := startDaemon(t, newConfig(t, own, cfg))
	env := d.waitPhase(front, "main", reconciler.PhaseReady, 2*time.Minute)
	cms, err := cs.CoreV1().ConfigMaps(env.Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cm := range cms.Items {
		found = found || (cm.Data["chart"] == "cache" && cm.Labels["arbor.dev/imported-from"] == back)
	}
	if !found {
		t.Errorf("no ConfigMap of the imported app's cache chart in %s", env.Namespace)
	}
}
