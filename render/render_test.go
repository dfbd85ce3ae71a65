package render

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/arbordev/arbor/schema"
)

func configFrom(t testing.TB, tmpl, env string) *schema.Config {
	t.Helper()
	cfg := &schema.Config{Template: &schema.Template{}, EnvVars: &schema.EnvVars{}}
	if err := yaml.Unmarshal([]byte(tmpl), cfg.Template); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(env), cfg.EnvVars); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSecretsNeverInErrors renders configurations that fail around secret
// values and checks no error carries a value.
func TestSecretsNeverInErrors(t *testing.T) {
	const value = "sk_live_DO_NOT_PRINT"
	cases := map[string]struct{ tmpl, env string }{
		"cycle through a secret": {
			tmpl: "services: [{name: a, image: x:1}]",
			env:  "defaults: [{key: S, value: " + value + ", secret: true}]\nmapping: {X: '${S}${Y}', Y: '${X}'}",
		},
		"other secret missing": {
			tmpl: "services: [{name: a, image: x:1, envs: [{key: T, secret: true}]}]",
			env:  "defaults: [{key: S, value: " + value + ", secret: true}]",
		},
		"bad key": {
			tmpl: "services: [{name: a, image: x:1, envs: [{key: 'B AD', value: " + value + ", secret: true}]}]",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Render(Input{Config: configFrom(t, c.tmpl, c.env), Context: Context{App: "a", Branch: "b", Secrets: map[string]string{"Z": value}}})
			if err == nil {
				t.Fatal("render succeeded; want an error")
			}
			if strings.Contains(err.Error(), value) {
				t.Fatalf("error shows a secret value: %v", err)
			}
		})
	}
}

// TestNoPanicOnOddInput renders odd but decodable inputs; each must return
// (an environment or an error), never panic.
func TestNoPanicOnOddInput(t *testing.T) {
	odd := []string{
		"{}",
		"services: [{}]",
		"services: [{name: a}]",
		"services: [{name: a, image: x, ports: [{port: 0}]}]",
		"services: [{name: a, image: x, ports: [{port: 70000}]}]",
		"services: [{name: a, image: x, readiness_probe: {}}]",
		"services: [{name: a, image: x, autoscale: {max_replicas: 0}}]",
		"services: [{name: a, image: x, volumes: [{type: weird, mount_path: /x}]}]",
		"services: [{name: a, image: x, volumes: [{name: v, type: persistent, mount_path: /x}], storage: {size: lots}}]",
		"services: [{name: a, image: x, init: [{name: i}]}]",
		"services: [{name: a, image: x, sidecars: [{name: s, from_services: nope}]}]",
		"services: [{name: a, image: x}, {name: a, image: y}]",
		"jobs: [{name: j}]",
		"jobs: [{name: j, from_services: nope}]",
		"cron_jobs: [{name: c, image: x}]",
		"cron_jobs: [{name: c, image: x, schedule: '* * * * *', concurrency_policy: sometimes}]",
		"hostnames: [{a: 'UPPER_${nope}'}]\nservices: [{name: a, image: x, ports: [{port: 80}]}]",
		"rules: [{service: a}]",
		"workflows: [{name: setup, order_from: [bogus]}]",
		"workflows: [{}]",
		"kustomize: [{path: ../outside}]",
		"kustomize: [{path: missing}]",
		"service_accounts: [{}]",
		"shared_volumes: [{name: s, size: -}]",
		"custom_links: [{name: l, url: '${nope}'}]",
		"services: [{name: a, image: x, sidecars: [{name: a, image: y}]}]",
		"services: [{name: a, image: x, ports: [{port: 80}], sidecars: [{name: s, image: y, ports: [{port: 80}]}]}]",
		"services: [{name: a, image: x, volumes: [{name: v, type: empty_dir, mount_path: /a}, {name: v, type: shmem, mount_path: /b}]}]",
		"environment_templates: [{name: ephemeral, resources: {cpu: {limits: banana}}}]\nservices: [{name: a, image: x}]",
	}
	tree := fstest.MapFS{"missing/readme": {Data: []byte("x")}}
	for i, tmpl := range odd {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			env, err := Render(Input{Config: configFrom(t, tmpl, ""), Tree: tree, Context: Context{App: "a", Branch: "b"}})
			if err != nil && strings.Contains(err.Error(), "internal error") {
				t.Fatalf("render panicked: %v", err)
			}
			if err == nil && env == nil {
				t.Fatal("no environment and no error")
			}
		})
	}
}

// TestJobNameFollowsRun checks a Job's name changes with the commit and the
// configuration, and stays the same otherwise.
func TestJobNameFollowsRun(t *testing.T) {
	tmpl := "services: [{name: web, image: x:1}]\njobs: [{name: migrate, from_services: web}]"
	name := func(commit, tmpl string) string {
		env, err := Render(Input{Config: configFrom(t, tmpl, ""), Context: Context{App: "a", Branch: "b", Commit: commit}})
		if err != nil {
			t.Fatal(err)
		}
		refs := env.Tasks["jobs.migrate"]
		if len(refs) != 1 || refs[0].Kind != "Job" {
			t.Fatalf("jobs.migrate owns %v", refs)
		}
		return refs[0].Name
	}
	a := name("c1", tmpl)
	if b := name("c1", tmpl); a != b {
		t.Errorf("same run, different names: %s %s", a, b)
	}
	if b := name("c2", tmpl); a == b {
		t.Errorf("new commit keeps the Job name %s", a)
	}
	if b := name("c1", tmpl+"\ncron_jobs: [{name: seed, image: y:1, schedule: '@daily'}]"); a == b {
		t.Errorf("new configuration keeps the Job name %s", a)
	}
	if !strings.HasPrefix(a, "migrate-") {
		t.Errorf("job name %q does not start with the job's name", a)
	}
}

// TestInstallLabelsEveryObject: with Context.Install, every object,
// generated or from a kustomize directory, carries the install's label.
func TestInstallLabelsEveryObject(t *testing.T) {
	tree := fstest.MapFS{
		"k/kustomization.yaml": {Data: []byte("resources: [cm.yaml]\n")},
		"k/cm.yaml":            {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n")},
	}
	cfg := configFrom(t, "kustomize: [{path: k}]\nservices: [{name: web, image: x:1, envs: [{key: A, value: b}]}]", "")
	env, err := Render(Input{Config: cfg, Tree: tree, Context: Context{App: "a", Branch: "b", Install: "team-a"}})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, o := range env.Objects {
		kinds[o.GetKind()] = true
		if got := o.GetLabels()[LabelInstall]; got != "team-a" {
			t.Errorf("%s/%s: install label %q, want team-a", o.GetKind(), o.GetName(), got)
		}
	}
	for _, k := range []string{"Namespace", "ConfigMap", "Deployment"} {
		if !kinds[k] {
			t.Errorf("no %s rendered: the check saw too little (%v)", k, kinds)
		}
	}
}

// TestConcurrentKustomize renders kustomize environments from several
// goroutines; krusty runs serialized and the results agree.
func TestConcurrentKustomize(t *testing.T) {
	tree := fstest.MapFS{
		"k/kustomization.yaml": {Data: []byte("resources: [cm.yaml]\n")},
		"k/cm.yaml":            {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n")},
	}
	in := Input{Config: configFrom(t, "kustomize: [{path: k}]", ""), Tree: tree, Context: Context{App: "a", Branch: "b"}}
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			env, err := Render(in)
			if err == nil && len(env.Objects) != 2 {
				err = fmt.Errorf("got %d objects, want 2", len(env.Objects))
			}
			errs <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestImportNotGiven(t *testing.T) {
	cfg := configFrom(t, "app_imports: [{name: backend}]\nservices: [{name: web, image: nginx:1}]", "")
	_, err := Render(Input{Config: cfg, Context: Context{App: "front", Branch: "main"}})
	want := "front@main: app_imports backend: the imported app was not given (is it configured in the daemon?)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestPodNameClashes(t *testing.T) {
	for tmpl, want := range map[string]string{
		"services: [{name: a, image: x, init: [{name: a, image: y}]}]":                                                                   `services.a: two containers are named "a"`,
		"services: [{name: a, image: x, ports: [{port: 80}], sidecars: [{name: s, image: y, ports: [{port: 80}]}]}]":                     "services.a: port 80 is used twice",
		"services: [{name: a, image: x, volumes: [{name: v, type: empty_dir, mount_path: /a}, {name: v, type: shmem, mount_path: /b}]}]": `services.a: two volumes are named "v"`,
	} {
		_, err := Render(Input{Config: configFrom(t, tmpl, ""), Context: Context{App: "x", Branch: "main"}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", tmpl, err, want)
		}
	}
}

// TestImportedCommitIsAPatch checks a new commit on an imported branch keeps
// the importer's configuration hash (a patch, docs/release-yaml.md#app-imports) but gives the
// imported app's jobs a new run.
func TestImportedCommitIsAPatch(t *testing.T) {
	back := configFrom(t, "services: [{name: api, image: x:1}]\njobs: [{name: migrate, from_services: api}]", "")
	render := func(commit string) *Environment {
		env, err := Render(Input{
			Config:  configFrom(t, "app_imports: [{name: back}]\nservices: [{name: web, image: nginx:1}]", ""),
			Context: Context{App: "front", Branch: "main", Commit: "f1"},
			Imports: []Import{{App: "back", Branch: "main", Commit: commit, Config: back}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	a, b := render("b1"), render("b2")
	if a.ConfigHash != b.ConfigHash {
		t.Error("a new imported commit changed the configuration hash")
	}
	if a.Tasks["jobs.migrate"][0].Name == b.Tasks["jobs.migrate"][0].Name {
		t.Error("a new imported commit kept the imported job's run name")
	}
}

// TestImportedHostsBelongToTheImporter: an imported service's default host
// in the importer's environment names the importer, so it never equals the
// host of the imported app's own environment of the same branch.
func TestImportedHostsBelongToTheImporter(t *testing.T) {
	back := configFrom(t, "services: [{name: api, image: x:1, ports: [{type: node_port, port: 80}]}]", "")
	ctx := Context{Branch: "main", Commit: "c1", Domain: "example.com"}
	hosts := func(env *Environment) []string {
		var out []string
		for _, u := range env.URLs {
			out = append(out, u.URL)
		}
		return out
	}
	ctx.App = "back"
	own, err := Render(Input{Config: back, Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	ctx.App = "front"
	front, err := Render(Input{
		Config:  configFrom(t, "app_imports: [{name: back}]\nservices: [{name: web, image: nginx:1}]", ""),
		Context: ctx,
		Imports: []Import{{App: "back", Branch: "main", Commit: "b1", Config: back}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hosts(own), []string{"http://api-back-main.example.com"}; !slices.Equal(got, want) {
		t.Errorf("back's own hosts = %v, want %v", got, want)
	}
	if got, want := hosts(front), []string{"http://api-front-main.example.com"}; !slices.Equal(got, want) {
		t.Errorf("the imported api's hosts in front's environment = %v, want %v", got, want)
	}
}

// TestHostsOfChartServicesLeftOut checks that hostnames and rules naming a
// service that only a chart would deploy are left out rather than failing the
// render: validation warns about them, and arbor does not deploy charts.
func TestHostsOfChartServicesLeftOut(t *testing.T) {
	tree := fstest.MapFS{".release.yaml": {Data: []byte(`
charts:
- name: search
  repo_url: https://charts.example.com
  install: x/search
  version: 1.0.0
services:
- name: web
  image: nginx:1
  ports: [{type: node_port, port: 80}]
hostnames:
- search: search-${env_id}.${domain}
rules:
- service: search
  hostnames: ["web-${env_id}.${domain}"]
  path: /search
`)}}
	cfg, findings, err := schema.Load(tree, schema.DefaultConfigFile, schema.LoadOptions{})
	if err != nil || findings.HasErrors() {
		t.Fatalf("load: %v %v", err, findings)
	}
	env, err := Render(Input{Config: cfg, Tree: tree, Context: Context{App: "shop", Branch: "main", Domain: "example.com", Charts: ChartOptions{SkipRemote: true}}})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var hosts []string
	for _, u := range env.URLs {
		hosts = append(hosts, u.Service+"="+u.URL)
	}
	if got := strings.Join(hosts, ","); got != "web=http://web-shop-main.example.com" {
		t.Errorf("URLs = %s, want only web's default host", got)
	}
}
