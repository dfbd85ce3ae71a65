package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture writes a config file next to a local repository directory and two
// secret files, and returns the config's path.
func fixture(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "repo"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"user", "pass", "token", "key", "known_hosts", "hook"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "arbor.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFull(t *testing.T) {
	path := fixture(t, `
apps:
- name: shop
  repo: https://git.example.com/acme/shop.git
  path: deploy/.release.yaml
  poll_interval: 30s
  auth: {username_file: user, password_file: pass}
  branches: {include: ["*", "feature/**"], exclude: ["dependabot/**"]}
  parameters: {plan: small, replicas: 2}
  secrets_from: arbor-secrets-shop
- name: local
  repo: ./repo
defaults:
  domain: preview.example.com
  ingress_class: nginx
  image_registry: registry.example.com/acme
  image_tag: latest
  storage_classes: {ssd: fast}
clusters:
  default: {kubeconfig: "", context: ""}
server:
  listen: 127.0.0.1:9090
  webhook_secret_file: hook
  webhook_secret_files: {github: hook}
namespace: arbor
concurrency: 8
allow_cluster_scoped: true
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	shop := cfg.Apps[0]
	if shop.PollInterval.Duration != 30*time.Second || shop.Path != "deploy/.release.yaml" {
		t.Errorf("shop = %+v", shop)
	}
	if shop.Auth.PasswordFile != filepath.Join(dir, "pass") {
		t.Errorf("password file not made absolute: %q", shop.Auth.PasswordFile)
	}
	if shop.Parameters["replicas"] != "2" {
		t.Errorf("parameters = %v", shop.Parameters)
	}
	local := cfg.Apps[1]
	if local.Repo != filepath.Join(dir, "repo") || local.Path != DefaultPath || local.PollInterval.Duration != time.Minute || local.Cluster != DefaultCluster {
		t.Errorf("local defaults = %+v", local)
	}
	if cfg.Server.Listen != "127.0.0.1:9090" || cfg.Namespace != "arbor" || cfg.Concurrency != 8 || !cfg.AllowClusterScoped || cfg.AllowForeignNamespaces {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg.Server.WebhookSecretFileFor("gitea") != filepath.Join(dir, "hook") {
		t.Errorf("gitea falls back to webhook_secret_file: %q", cfg.Server.WebhookSecretFileFor("gitea"))
	}
	if cfg.Defaults.StorageClasses["ssd"] != "fast" {
		t.Errorf("defaults = %+v", cfg.Defaults)
	}
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(fixture(t, "apps: [{name: a, repo: repo}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != DefaultListen || cfg.Namespace != DefaultNamespace || cfg.Concurrency != DefaultConcurrency {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if _, ok := cfg.Clusters[DefaultCluster]; !ok {
		t.Errorf("no default cluster: %v", cfg.Clusters)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty_file", "", "arbor.yaml: empty file: at least one app is required"},
		{"invalid_yaml", "apps: [\n", "arbor.yaml:2: invalid YAML: did not find expected node content"},
		{"two_documents", "apps: []\n---\napps: []\n", "arbor.yaml:2:1: more than one YAML document"},
		{"top_level_list", "- a\n", "arbor.yaml:1:1: expected a mapping, found a list"},
		{"no_apps", "namespace: arbor\n", "arbor.yaml:1:1: apps: at least one app is required"},
		{"unknown_top_key", "apps: [{name: a, repo: repo}]\nbogus: 1\n", "arbor.yaml:2:1: bogus: unknown key"},
		{"unknown_app_key", "apps:\n- name: a\n  repo: repo\n  branch: main\n", "arbor.yaml:4:3: apps[0].branch: unknown key"},
		{"unknown_auth_key", "apps:\n- name: a\n  repo: https://h/r\n  auth: {password: x}\n", "arbor.yaml:4:10: apps[0].auth.password: unknown key"},
		{"duplicate_key", "apps:\n- name: a\n  name: b\n  repo: repo\n", "arbor.yaml:3:3: apps[0].name: duplicate key"},
		{"apps_not_list", "apps: {name: a}\n", "arbor.yaml:1:1: apps: expected a list, found a mapping"},
		{"name_missing", "apps:\n- repo: repo\n", "arbor.yaml:2:3: apps[0].name: required"},
		{"name_not_dns", "apps:\n- name: Shop_1\n  repo: repo\n", `arbor.yaml:2:3: apps[0].name: "Shop_1" must be a DNS label`},
		{"name_too_long", "apps:\n- name: abcdefghijklmnopqrstuvwxyz\n  repo: repo\n", "apps[0].name: \"abcdefghijklmnopqrstuvwxyz\" must be a DNS label of at most 20"},
		{"name_duplicate", "apps:\n- name: a\n  repo: repo\n- name: a\n  repo: repo\n", `arbor.yaml:4:3: apps[1].name: "a" is already the name of apps[0]`},
		{"repo_missing", "apps:\n- name: a\n", "arbor.yaml:2:3: apps[0].repo: required"},
		{"repo_local_missing", "apps:\n- name: a\n  repo: ./nope\n", "arbor.yaml:3:3: apps[0].repo: local repository"},
		{"repo_local_file", "apps:\n- name: a\n  repo: user\n", "apps[0].repo: local repository"},
		{"repo_bad_scheme", "apps:\n- name: a\n  repo: ftp://h/r\n", `arbor.yaml:3:3: apps[0].repo: unsupported scheme "ftp"`},
		{"repo_no_host", "apps:\n- name: a\n  repo: https:///r\n", "apps[0].repo: \"https:///r\" has no host"},
		{"path_absolute", "apps:\n- name: a\n  repo: repo\n  path: /etc/x\n", `arbor.yaml:4:3: apps[0].path: "/etc/x" must be a clean path`},
		{"path_escapes", "apps:\n- name: a\n  repo: repo\n  path: ../x\n", "apps[0].path"},
		{"poll_interval_bad", "apps:\n- name: a\n  repo: repo\n  poll_interval: soon\n", `arbor.yaml:4:3: apps[0].poll_interval: invalid duration "soon"`},
		{"poll_interval_number", "apps:\n- name: a\n  repo: repo\n  poll_interval: 60\n", `arbor.yaml:4:3: apps[0].poll_interval: invalid duration "60"`},
		{"poll_interval_too_short", "apps:\n- name: a\n  repo: repo\n  poll_interval: 10ms\n", "arbor.yaml:4:3: apps[0].poll_interval: must be at least 1s"},
		{"auth_on_local", "apps:\n- name: a\n  repo: repo\n  auth: {token_file: token}\n", "arbor.yaml:4:3: apps[0].auth: a local repository takes no credentials"},
		{"auth_password_without_user", "apps:\n- name: a\n  repo: https://h/r\n  auth:\n    password_file: pass\n", "arbor.yaml:4:3: apps[0].auth.username_file: required with password_file"},
		{"auth_user_without_password", "apps:\n- name: a\n  repo: https://h/r\n  auth:\n    username_file: user\n", "apps[0].auth.password_file: required with username_file"},
		{"auth_token_and_password", "apps:\n- name: a\n  repo: https://h/r\n  auth:\n    username_file: user\n    password_file: pass\n    token_file: token\n", "arbor.yaml:7:5: apps[0].auth.token_file: give token_file or password_file, not both"},
		{"auth_ssh_on_https", "apps:\n- name: a\n  repo: https://h/r\n  auth: {ssh_key_file: key, known_hosts_file: known_hosts}\n", "apps[0].auth: ssh_key_file and known_hosts_file need an ssh repository"},
		{"auth_password_on_ssh", "apps:\n- name: a\n  repo: git@h:acme/r.git\n  auth: {token_file: token}\n", "apps[0].auth: an ssh repository takes ssh_key_file"},
		{"auth_ssh_without_known_hosts", "apps:\n- name: a\n  repo: ssh://git@h/r\n  auth:\n    ssh_key_file: key\n", "arbor.yaml:4:3: apps[0].auth.known_hosts_file: required with ssh_key_file"},
		{"auth_file_missing", "apps:\n- name: a\n  repo: https://h/r\n  auth:\n    token_file: nope\n", "arbor.yaml:5:5: apps[0].auth.token_file:"},
		{"auth_file_is_dir", "apps:\n- name: a\n  repo: https://h/r\n  auth:\n    token_file: repo\n", "is a directory, not a file"},
		{"branches_bad_glob", "apps:\n- name: a\n  repo: repo\n  branches:\n    include: [\"feat[\"]\n", `arbor.yaml:5:15: apps[0].branches.include[0]: branch pattern "feat[": unclosed '['`},
		{"branches_empty_glob", "apps:\n- name: a\n  repo: repo\n  branches:\n    exclude:\n    - \"\"\n", "arbor.yaml:6:7: apps[0].branches.exclude[0]: branch pattern \"\": empty pattern"},
		{"branches_not_list", "apps:\n- name: a\n  repo: repo\n  branches: {include: main}\n", `apps[0].branches.include: expected a list, found "main"`},
		{"parameters_not_map", "apps:\n- name: a\n  repo: repo\n  parameters: [a]\n", "arbor.yaml:4:3: apps[0].parameters: expected a mapping, found a list"},
		{"parameter_value_map", "apps:\n- name: a\n  repo: repo\n  parameters:\n    plan: {x: 1}\n", "arbor.yaml:5:5: apps[0].parameters.plan: expected a string, found a mapping"},
		{"secrets_from_bad", "apps:\n- name: a\n  repo: repo\n  secrets_from: Bad_Name\n", `arbor.yaml:4:3: apps[0].secrets_from: "Bad_Name" is not a valid Secret name`},
		{"cluster_unknown", "apps:\n- name: a\n  repo: repo\n  cluster: prod\n", `arbor.yaml:4:3: apps[0].cluster: no cluster named "prod"`},
		{"cluster_name_bad", "apps: [{name: a, repo: repo}]\nclusters:\n  Prod_1: {}\n", "arbor.yaml:3:3: clusters.Prod_1: cluster name must be a DNS label"},
		{"cluster_kubeconfig_missing", "apps: [{name: a, repo: repo}]\nclusters:\n  default:\n    kubeconfig: nope\n", "arbor.yaml:4:5: clusters.default.kubeconfig:"},
		{"cluster_two_sources", "apps: [{name: a, repo: repo}]\nclusters:\n  b: {kubeconfig: arbor.yaml, kubeconfig_secret: s}\n", "arbor.yaml:3:3: clusters.b: kubeconfig and kubeconfig_secret: give one"},
		{"cluster_secret_default", "apps: [{name: a, repo: repo}]\nclusters:\n  default: {kubeconfig_secret: s}\n", "arbor.yaml:3:13: clusters.default.kubeconfig_secret: \"s\": a Secret's name"},
		{"cluster_unknown_key", "apps: [{name: a, repo: repo}]\nclusters:\n  default: {server: x}\n", "arbor.yaml:3:13: clusters.default.server: unknown key"},
		{"defaults_domain_bad", "apps: [{name: a, repo: repo}]\ndefaults:\n  domain: not a domain\n", `arbor.yaml:3:3: defaults.domain: "not a domain" is not a DNS name`},
		{"defaults_unknown_key", "apps: [{name: a, repo: repo}]\ndefaults:\n  registry: x\n", "arbor.yaml:3:3: defaults.registry: unknown key"},
		{"storage_class_bad", "apps: [{name: a, repo: repo}]\ndefaults:\n  storage_classes: {ssd: Fast_1}\n", "defaults.storage_classes.ssd"},
		{"listen_bad", "apps: [{name: a, repo: repo}]\nserver:\n  listen: \"8080\"\n", `arbor.yaml:3:3: server.listen: "8080" must be host:port`},
		{"webhook_provider_unknown", "apps: [{name: a, repo: repo}]\nserver:\n  webhook_secret_files:\n    bitbucket: hook\n", "arbor.yaml:4:5: server.webhook_secret_files.bitbucket: unknown provider"},
		{"webhook_file_missing", "apps: [{name: a, repo: repo}]\nserver:\n  webhook_secret_file: nope\n", "arbor.yaml:3:3: server.webhook_secret_file:"},
		{"namespace_bad", "apps: [{name: a, repo: repo}]\nnamespace: Arbor\n", `arbor.yaml:2:1: namespace: "Arbor" is not a DNS label`},
		{"concurrency_string", "apps: [{name: a, repo: repo}]\nconcurrency: many\n", `arbor.yaml:2:1: concurrency: expected an integer, found "many"`},
		{"concurrency_negative", "apps: [{name: a, repo: repo}]\nconcurrency: -1\n", "arbor.yaml:2:1: concurrency: must be at least 1, got -1"},
		{"allow_not_bool", "apps: [{name: a, repo: repo}]\nallow_cluster_scoped: sure\n", `arbor.yaml:2:1: allow_cluster_scoped: expected true or false, found "sure"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(fixture(t, tt.body))
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			got := err.Error()
			// errors name the file by its full path; compare from its base name
			if i := strings.Index(got, "arbor.yaml"); i >= 0 {
				got = got[i:]
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("error:\n%s\nwant it to contain:\n%s", got, tt.want)
			}
		})
	}
}

func TestLoadReportsEveryError(t *testing.T) {
	_, err := Load(fixture(t, "apps:\n- name: A\n  repo: repo\n  poll_interval: x\n  extra: 1\n"))
	es, ok := err.(Errors)
	if !ok || len(es) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
	if es[0].Line != 4 || es[1].Line != 5 {
		t.Errorf("errors not in file order: %v", es)
	}
}
