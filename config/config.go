// Package config reads the daemon configuration of `arbor run --config FILE`:
// which repositories to follow, how to reach them, the defaults every
// environment is rendered with, which clusters to act on, how the daemon
// serves its HTTP endpoints, how images of `build` services get into a
// registry (built with BuildKit, or waited for), and when environments
// pause on their own (schedules, idle time, per-branch overrides).
//
// Decoding is strict: an unknown key, a value of the wrong type and a value
// that does not make sense are all errors, each reported as
// FILE:LINE:COL: field: message. The file is parsed and positioned by
// schema.ParseYAML, as the template is, and branch patterns are schema's.
package config

import (
	"path/filepath"
	"time"
)

// Defaults applied by Load when a key is absent.
const (
	DefaultPath         = ".release.yaml"
	DefaultPollInterval = time.Minute
	DefaultListen       = ":8080"
	// DefaultWakeListen is the waking endpoint's listener, DefaultWakeService
	// the Service reaching it; WakeOff as wake_listen turns waking off.
	DefaultWakeListen  = ":8081"
	DefaultWakeService = "arbor"
	WakeOff            = "off"
	DefaultNamespace   = "arbor-system"
	// DefaultServiceAccount is the ServiceAccount arbor runs as in its namespace.
	DefaultServiceAccount = "arbor"
	DefaultConcurrency    = 16
	DefaultCluster        = "default"
	// DefaultGitTimeout bounds one listing or fetch of a repository.
	DefaultGitTimeout = 2 * time.Minute
	// DefaultGitMaxFetchSize bounds the pack data of one fetch, in bytes.
	DefaultGitMaxFetchSize = 512 << 20
	// DefaultPodSecurity is the Pod Security Admission level enforced in
	// environment namespaces.
	DefaultPodSecurity = "baseline"
	// DefaultKustomizeMaxFileSize bounds one file a kustomization reads, in
	// bytes; DefaultKustomizeMaxTotalSize every file the kustomize
	// directories of one render read; DefaultKustomizeTimeout one build.
	// They are render's defaults (render.DefaultKustomize*).
	DefaultKustomizeMaxFileSize  = 4 << 20
	DefaultKustomizeMaxTotalSize = 32 << 20
	DefaultKustomizeTimeout      = 30 * time.Second
)

// PodSecurityLevels are the Pod Security Standards a pod_security may name.
var PodSecurityLevels = []string{"privileged", "baseline", "restricted"}

// Webhook providers a secret can be configured for.
var Providers = []string{"github", "gitlab", "gitea", "generic"}

// Config is the whole daemon configuration.
type Config struct {
	Apps     []App              `yaml:"apps"`
	Defaults Defaults           `yaml:"defaults"`
	Clusters map[string]Cluster `yaml:"clusters"`
	Server   Server             `yaml:"server"`
	// Images says whether arbor builds images, waits for CI's, or neither.
	Images Images `yaml:"images"`
	// Namespace is arbor's own namespace: its Lease, its Secrets (secrets_from).
	Namespace string `yaml:"namespace"`
	// Install names this arbor install (default: Namespace). Every object
	// arbor writes carries it (label arbor.dev/install), and arbor reads,
	// adopts, prunes and deletes only environments of its own install.
	Install string `yaml:"install"`
	// ServiceAccount is the ServiceAccount arbor runs as, in Namespace: each
	// environment namespace binds it the right to read that namespace's
	// Secrets (docs/security.md#secrets-only-where-arbor-manages-them).
	ServiceAccount string `yaml:"service_account"`
	// Concurrency bounds how many environments are reconciled at once.
	Concurrency int `yaml:"concurrency"`
	// AllowClusterScoped and AllowForeignNamespaces relax the confinement of
	// objects from repositories (docs/security.md#safety-rules); both default to false.
	AllowClusterScoped     bool `yaml:"allow_cluster_scoped"`
	AllowForeignNamespaces bool `yaml:"allow_foreign_namespaces"`
	// ChartPlainHTTPHosts are OCI registries (host:port) reached over plain
	// HTTP for oci:// charts: a registry on a trusted network. Empty: TLS
	// only.
	ChartPlainHTTPHosts []string `yaml:"chart_plain_http_hosts"`

	// File is the path the configuration was read from.
	File string `yaml:"-"`
}

// App is one repository whose branches become environments.
type App struct {
	// Name is a DNS label, unique in the file; it prefixes every namespace of the app.
	Name string `yaml:"name"`
	// Repo is a URL (https, http, ssh, git, file, or scp-like user@host:path)
	// or a local path; a relative path is relative to the configuration file.
	Repo string `yaml:"repo"`
	// Path is where .release.yaml is found in each branch.
	Path         string            `yaml:"path"`
	PollInterval Duration          `yaml:"poll_interval"`
	Auth         Auth              `yaml:"auth"`
	Branches     BranchFilter      `yaml:"branches"`
	Parameters   map[string]string `yaml:"parameters"`
	// SecretsFrom names a Secret in arbor's namespace holding the values of
	// secret environment variables that have no value in git.
	SecretsFrom string `yaml:"secrets_from"`
	// AllowImportBy names the apps whose templates may import this one
	// (app_imports). An importer renders this app's services in its own
	// namespace, with this app's secrets_from values: so no app may import
	// another that does not name it here.
	AllowImportBy []string `yaml:"allow_import_by"`
	// Cluster names an entry of clusters; "" means the default cluster.
	Cluster string `yaml:"cluster"`
	// GitTimeout bounds one listing or one fetch of the repository; a
	// listing that takes longer fails and deletes nothing.
	GitTimeout Duration `yaml:"git_timeout"`
	// GitMaxFetchSize bounds the pack data one fetch may receive.
	GitMaxFetchSize ByteSize `yaml:"git_max_fetch_size"`
	// MaxExtension bounds one extension of an environment's expiry through
	// the API (arbor env extend): at most this long from now; 0: no bound.
	MaxExtension Duration `yaml:"max_extension"`
	// MaxConfigSize bounds each configuration file read from a branch
	// (.release.yaml and the files it includes); 0: schema.DefaultMaxFileSize.
	MaxConfigSize ByteSize `yaml:"max_config_size"`
	// PodSecurity is the Pod Security Standard the API server enforces on
	// the pods of the app's environments (a label on each namespace):
	// privileged, baseline or restricted.
	PodSecurity string `yaml:"pod_security"`
	// Kustomize bounds what the kustomize directories of one render of a
	// branch may read, and how long one build may run.
	Kustomize KustomizeLimits `yaml:"kustomize"`
	// ChartRepositories are the remote chart repositories the app's
	// templates may name (docs/charts.md): https:// repository URLs and
	// oci:// references, each allowing itself and what is under it at a "/".
	// Empty (the default): no remote chart is fetched.
	ChartRepositories []string `yaml:"chart_repositories"`
	// Forge names the forge that hosts the repository, for pull requests,
	// commit statuses and the pull request comment (docs/forge.md). Absent:
	// arbor reads git only.
	Forge Forge `yaml:"forge"`
	// Environments says which branches get an environment: "branches"
	// (every branch the filters allow; the default) or "pull_requests" (the
	// head branch of each open pull request of the repository itself, which
	// needs forge). The branch filters apply in both.
	Environments string `yaml:"environments"`
	// PullRequests narrows pull_requests environments.
	PullRequests PullRequestFilter `yaml:"pull_requests"`
	// Pause says when the app's environments pause on their own: a
	// schedule, idling, per-branch overrides (docs/pausing.md).
	Pause Pause `yaml:"pause"`
	// ResourceQuota, LimitRange and MaxEnvironments override the defaults'
	// cost guards (Config.GuardsFor); absent: the defaults'.
	ResourceQuota   map[string]string            `yaml:"resource_quota"`
	LimitRange      map[string]map[string]string `yaml:"limit_range"`
	MaxEnvironments int                          `yaml:"max_environments"`
}

// The values of App.Environments.
const (
	EnvironmentsBranches     = "branches"
	EnvironmentsPullRequests = "pull_requests"
)

// PullRequestFilter chooses the pull requests that get an environment.
type PullRequestFilter struct {
	// Labels, when given, admit only pull requests with at least one of
	// them (Release's pull request labels).
	Labels []string `yaml:"labels"`
	// Drafts admits draft pull requests too.
	Drafts bool `yaml:"drafts"`
}

// Forge says how to reach the forge of an app's repository. Load fills Type
// (guessed from the repository's address when absent), URL (the address's
// host when absent) and Repo.
type Forge struct {
	// Type is gitea, github or gitlab.
	Type string `yaml:"type"`
	// URL is the forge's web address, e.g. https://git.example.com; the API
	// address is derived from it.
	URL string `yaml:"url"`
	// TokenFile holds the API token (docs/forge.md lists the scopes each
	// forge needs). It is read when used and never logged.
	TokenFile string `yaml:"token_file"`
	// Repo is the repository's path on the forge (owner/name,
	// group/sub/name), taken from the app's repo address.
	Repo string `yaml:"-"`
}

// Local reports whether the app's repository is a local path (Load makes
// every local repository an absolute path): every replica then sees its
// changes itself, through fsnotify.
func (a App) Local() bool { return filepath.IsAbs(a.Repo) }

// Enabled reports whether the app has a forge configured.
func (f Forge) Enabled() bool { return f != Forge{} }

// KustomizeLimits bound the kustomize builds of one render
// (docs/security.md#kustomize). A branch is untrusted: these keep what it
// can make the daemon read and hold small.
type KustomizeLimits struct {
	// MaxFileSize bounds one file a kustomization references.
	MaxFileSize ByteSize `yaml:"max_file_size"`
	// MaxTotalSize bounds every file read for kustomize in one render.
	MaxTotalSize ByteSize `yaml:"max_total_size"`
	// Timeout bounds one build, waiting for another build included.
	Timeout Duration `yaml:"timeout"`
}

// Auth names files holding a repository's credentials. Values are read when
// used, never logged.
type Auth struct {
	UsernameFile string `yaml:"username_file"`
	PasswordFile string `yaml:"password_file"`
	TokenFile    string `yaml:"token_file"`
	SSHKeyFile   string `yaml:"ssh_key_file"`
	// SSHPassphraseFile holds the passphrase of an encrypted ssh key.
	SSHPassphraseFile string `yaml:"ssh_passphrase_file"`
	KnownHostsFile    string `yaml:"known_hosts_file"`
}

// Empty reports whether no credential is configured.
func (a Auth) Empty() bool { return a == Auth{} }

// Defaults are the settings environments get when their template sets none.
type Defaults struct {
	Domain        string `yaml:"domain"`
	IngressClass  string `yaml:"ingress_class"`
	ImageRegistry string `yaml:"image_registry"`
	ImageTag      string `yaml:"image_tag"`
	// StorageClasses maps a service's storage.type to a StorageClass name.
	StorageClasses map[string]string `yaml:"storage_classes"`
	// IngressAnnotations are the ingress annotations (keys or path.Match
	// patterns) a template may set; empty: render.DefaultIngressAnnotations.
	IngressAnnotations []string `yaml:"ingress_annotations"`
	// ResourceQuota, LimitRange and MaxEnvironments are the cost guards
	// every app gets unless it sets its own (Guards).
	ResourceQuota   map[string]string            `yaml:"resource_quota"`
	LimitRange      map[string]map[string]string `yaml:"limit_range"`
	MaxEnvironments int                          `yaml:"max_environments"`
}

// Cluster says how to reach one cluster. With every field empty arbor uses
// its in-cluster configuration when running in a pod, and otherwise
// $KUBECONFIG and ~/.kube/config as kubectl does.
type Cluster struct {
	Kubeconfig string `yaml:"kubeconfig"`
	// KubeconfigSecret names a Secret in arbor's namespace (on the default
	// cluster) whose key "kubeconfig" holds the kubeconfig; read at start.
	KubeconfigSecret string `yaml:"kubeconfig_secret"`
	Context          string `yaml:"context"`
	// Traffic is where the cluster's ingress controller counts requests
	// (traffic.go); idle pausing then sees them.
	Traffic Traffic `yaml:"traffic"`
}

// Server configures arbor's HTTP endpoints.
type Server struct {
	Listen string `yaml:"listen"`
	// WebhookSecretFile holds the secret for every provider without its own.
	WebhookSecretFile string `yaml:"webhook_secret_file"`
	// WebhookSecretFiles holds a secret file per provider (github, gitlab, gitea, generic).
	WebhookSecretFiles map[string]string `yaml:"webhook_secret_files"`
	// AnonymousRead serves the status page and the read-only API
	// (/api/v1/apps...) without a token. By default they need a bearer
	// token allowed arbor's verbs list (get for one environment), like the
	// actions (docs/api.md).
	AnonymousRead bool `yaml:"anonymous_read"`
	// WakeListen is the waking endpoint's own listener (docs/pausing.md):
	// the Ingresses of paused environments lead there. "off" turns waking
	// off; paused environments' Ingresses are then left as they are.
	WakeListen string `yaml:"wake_listen"`
	// WakeService is the Service in arbor's namespace whose port named
	// "wake" reaches WakeListen; paused environments route to its cluster IP.
	WakeService string `yaml:"wake_service"`
}

// Waking reports whether paused environments wake on a request.
func (s Server) Waking() bool { return s.WakeListen != WakeOff }

// WebhookSecretFileFor returns the secret file for a provider, "" when none.
func (s Server) WebhookSecretFileFor(provider string) string {
	if f := s.WebhookSecretFiles[provider]; f != "" {
		return f
	}
	return s.WebhookSecretFile
}

// App returns the app named name.
func (c *Config) App(name string) (App, bool) {
	for _, a := range c.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return App{}, false
}

// Duration is a time.Duration written as Go writes it ("90s", "1m30s").
type Duration struct{ time.Duration }

// ByteSize is a number of bytes written as a Kubernetes quantity ("512Mi",
// "1Gi", "100M") or a plain integer.
type ByteSize struct{ Bytes int64 }
