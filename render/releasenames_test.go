package render

import (
	"strings"
	"testing"
)

// TestReleaseNames renders names Release accepts and Kubernetes does not
// (upper case, "_"): objects take the derived name, labels, tasks and
// variable names keep the user's; an undeclared depends_on is ignored; a
// hostname for a service without ports gives no host.
func TestReleaseNames(t *testing.T) {
	cfg := configFrom(t, `
domain: example.com
services:
- name: frontendTests
  image: cypress:1
  ports: [{type: node_port, port: 8080}]
- name: sidekiq_worker
  image: worker:1
  depends_on: [api, frontendTests]
jobs:
- name: db_migrate
  image: migrate:1
hostnames:
- sidekiq_worker: worker-${env_id}.${domain}
`, "")
	env, err := Render(Input{Config: cfg, Context: Context{App: "shop", Branch: "main", Commit: "c1"}})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, o := range env.Objects {
		names[o.GetKind()+"/"+o.GetName()] = true
		if o.GetKind() == "Deployment" && o.GetName() == "frontendtests" {
			if l := o.GetLabels()[LabelService]; l != "frontendTests" {
				t.Errorf("service label = %q, want the user's name frontendTests", l)
			}
		}
		if o.GetKind() == "Ingress" {
			b, _ := o.MarshalJSON()
			if !strings.Contains(string(b), `"name":"frontendtests"`) {
				t.Errorf("Ingress backend does not name Service frontendtests: %s", b)
			}
			if strings.Contains(string(b), "worker-") {
				t.Errorf("Ingress routes to sidekiq_worker, which has no ports: %s", b)
			}
		}
		if o.GetKind() == "ConfigMap" && o.GetName() == "sidekiq-worker-env" {
			data, _, _ := unstructuredStrings(o.Object, "data")
			if !strings.HasPrefix(data["FRONTENDTESTS_INGRESS_URL"], "http://frontendtests-shop-") {
				t.Errorf("FRONTENDTESTS_INGRESS_URL = %q", data["FRONTENDTESTS_INGRESS_URL"])
			}
		}
	}
	for _, want := range []string{"Deployment/frontendtests", "Service/frontendtests", "Deployment/sidekiq-worker", "ConfigMap/sidekiq-worker-env"} {
		if !names[want] {
			t.Errorf("no %s among %v", want, names)
		}
	}
	if refs := env.Tasks["jobs.db_migrate"]; len(refs) != 1 || !strings.HasPrefix(refs[0].Name, "db-migrate-") {
		t.Errorf("jobs.db_migrate owns %v, want one Job named db-migrate-HASH", refs)
	}
	steps := env.Workflows[StageSetup].Steps
	if len(steps) != 2 || steps[1].Tasks[0] != "services.sidekiq_worker" {
		t.Errorf("setup = %+v, want frontendTests then sidekiq_worker (api ignored)", steps)
	}
}

func unstructuredStrings(o map[string]any, key string) (map[string]string, bool, error) {
	m, ok := o[key].(map[string]any)
	out := map[string]string{}
	for k, v := range m {
		out[k], _ = v.(string)
	}
	return out, ok, nil
}
