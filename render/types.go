package render

import (
	"io/fs"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/inventory"
	"github.com/arbordev/arbor/schema"
)

// Labels and annotations arbor puts on every object it writes. Safety rules key
// on them: arbor prunes and deletes only objects carrying LabelManagedBy=arbor.
const (
	LabelManagedBy     = inventory.LabelManagedBy // defined once, in inventory
	ManagedByValue     = inventory.ManagedByValue
	LabelApp           = inventory.LabelApp
	LabelEnv           = inventory.LabelEnv
	LabelInstall       = inventory.LabelInstall
	LabelService       = "arbor.dev/service"
	LabelJob           = "arbor.dev/job"
	AnnotationCommit   = "arbor.dev/commit"
	AnnotationBranch   = "arbor.dev/branch"
	AnnotationConfig   = "arbor.dev/config-hash"
	AnnotationKeep     = "arbor.dev/keep"
	AnnotationEnvHash  = "arbor.dev/env-hash" // pod template: hash of its ConfigMap and Secret
	AnnotationTemplate = "arbor.dev/environment-template"
	// LabelImportedFrom marks objects of an imported app (docs/release-yaml.md#app-imports) with that app's name.
	LabelImportedFrom = "arbor.dev/imported-from"
)

// Input is everything an environment is rendered from.
type Input struct {
	Config  *schema.Config
	Context Context
	// Tree is the branch's tree at Context.Commit, rooted at the repository root.
	Tree fs.FS
	// Imports are the apps named in app_imports, already loaded at the branch
	// chosen for them (docs/release-yaml.md#app-imports), in the order the template lists them.
	Imports []Import
	// RemoteCharts are the packaged charts (.tgz) of the template's remote
	// charts, fetched by the caller (package chartsource), by chart name.
	RemoteCharts map[string][]byte
}

// Import is an imported app at the branch chosen for it.
type Import struct {
	App    string // the imported app's name in the daemon config
	Branch string
	Commit string
	Config *schema.Config
	Tree   fs.FS
	// ExcludeServices are dropped from the imported app (from app_imports).
	ExcludeServices []string
	// Parameters and Secrets are the imported app's values from the daemon
	// config, as Context.Parameters and Context.Secrets are the importer's.
	Parameters map[string]string
	Secrets    map[string]string
	// RemoteCharts are the imported app's fetched charts, as Input.RemoteCharts.
	RemoteCharts map[string][]byte
}

// Context is what the environment is: whose, which branch, and the daemon's settings.
type Context struct {
	App string // app name from the daemon config (the template's `app` may override, unless AppFixed)
	// AppFixed makes App the app's name whatever the template's `app` says:
	// the daemon's apps are named by its config, so that a branch cannot
	// move its environments into another app's namespaces.
	AppFixed bool
	// Install, when set, labels every object with LabelInstall: the arbor
	// install that owns the environment (the daemon's config).
	Install string
	// Namespace is the environment's namespace; "" names it
	// Namespace(App, EnvID(Branch)). The daemon sets it to keep the name an
	// existing environment has, and to make two apps' names differ where
	// "<app>-<env id>" would meet (shop@api-main, shop-api@main).
	Namespace           string
	Branch              string
	Commit              string            // full SHA; "" renders with "unknown"
	EnvironmentTemplate string            // "" chooses by branch: permanent for the tracking branch, else ephemeral
	DefaultBranch       string            // the remote's HEAD, used when tracking_branch is unset
	Domain              string            // default domain when the template sets none
	IngressClass        string            // default ingress class
	Parameters          map[string]string // values from the daemon config
	Image               ImageSettings
	StorageClasses      map[string]string // storage.type → StorageClass name
	// Secrets are the values of secret env vars with no value in git, read by
	// the caller from the Secret the daemon config names. Never logged.
	Secrets map[string]string
	// SecretPlaceholders renders a secret with no value (in git or in
	// Secrets) as the placeholder SecretPlaceholder(key) instead of failing:
	// for offline rendering (arbor render, arbor validate), never the daemon.
	SecretPlaceholders bool
	// AllowClusterScoped and AllowForeignNamespaces relax the confinement of
	// kustomize and chart output (docs/release-yaml.md#kustomize-directories,
	// docs/charts.md); both default to refusing.
	AllowClusterScoped     bool
	AllowForeignNamespaces bool
	// HashKey, when set, keys the arbor.dev/env-hash annotation (HMAC-SHA-256)
	// that rolls pods when their variables change, and the environment's
	// configuration hash: both cover secret values, and anyone who reads a Deployment could otherwise test guesses
	// of a weak secret against it offline. The daemon keys it with the UID of
	// the app's secrets_from Secret, which only those who may read that
	// Secret can see.
	HashKey []byte
	// DomainLocked (the daemon) keeps every host under Domain: a template's
	// own domain or literal host outside it is an error.
	DomainLocked bool
	// IngressAnnotations, when not nil, are the ingress annotation keys (or
	// path.Match patterns) a template may set; others are an error.
	IngressAnnotations []string
	// Kustomize bounds what kustomize builds read and how long they run.
	Kustomize KustomizeLimits
	// Charts say what cluster charts render for, and bound their rendering.
	Charts ChartOptions
}

// ImageSettings give untagged repo-built images their registry and tag.
type ImageSettings struct {
	Registry string // prefix, e.g. registry.example.com/team
	Tag      string // default ${RELEASE_COMMIT_SHA}
	// Pinned maps the reference of a built service's image (ImageBuild.Image)
	// to the image to run, pinned by digest: what the daemon built or found
	// in the registry. A built service without a pin runs its reference as
	// it is.
	Pinned map[string]string
}

// Environment is a rendered environment.
type Environment struct {
	App        string
	Branch     string
	Commit     string
	EnvID      string
	Namespace  string
	Template   string // environment template used: permanent, ephemeral or a custom one
	ConfigHash string // changes when configuration (not code) changes
	// Objects are every object of the environment, Namespace first, in a stable order.
	Objects []*unstructured.Unstructured
	// Workflows are the setup, patch and teardown stages (defaults filled in)
	// and any other named workflow, as data.
	Workflows map[string]Workflow
	// Tasks say which objects each task owns, keyed by task name
	// ("services.web", "jobs.migrate"). Objects owned by no task are shared
	// (applied before the first step); the Ingress is applied after the last.
	Tasks map[string][]ObjectRef
	// HaltOnError lists the tasks whose own failure stops any workflow
	// (jobs with halt_on_error), besides steps marked halt_on_error.
	HaltOnError  map[string]bool
	URLs         []URL
	Links        []schema.Link // custom_links with variables expanded
	ExpiresAfter string        // from the environment template; "" never
	AutoDeploy   bool
	// Imports are the imported apps as rendered, in app_imports order. Their
	// commits are code, not configuration: a new commit on an imported branch
	// leaves ConfigHash alone (the environment is patched, not set up again).
	Imports []ImportedApp
	// ParallelizeAppImports (parallelize_app_imports) says the steps of
	// different imported apps (Step.App) may run concurrently, each app's
	// own steps still in order, all before the importer's steps.
	ParallelizeAppImports bool
	// Warnings are what render could not check offline, such as the scope
	// of a kind that is not built into Kubernetes (a custom resource).
	Warnings []string
	// Hooks are the Helm hooks of the chart tasks, in chart order, each
	// with its phase (docs/charts.md). They are not among Objects: the
	// workflow applies them around their chart task.
	Hooks []Hook
}

// ImportedApp is an imported app at the branch and commit it was rendered at.
type ImportedApp struct {
	App    string `json:"app"`
	Branch string `json:"branch"`
	Commit string `json:"commit"`
}

// URL is a host that reaches a service.
type URL struct {
	Service string `json:"service"`
	URL     string `json:"url"`
}

// Workflow is a stage as a list of steps; steps run in order, tasks of a step in parallel.
type Workflow struct {
	Name  string `json:"name"`
	Steps []Step `json:"steps"`
}

// Step is one step of a workflow.
type Step struct {
	Name          string   `json:"name"`
	Tasks         []string `json:"tasks"` // services.X, jobs.X, release.remove_environment
	WaitForFinish bool     `json:"waitForFinish"`
	HaltOnError   bool     `json:"haltOnError,omitempty"`
	App           string   `json:"app,omitempty"` // the imported app whose step this is; "" for the app itself
}

// ObjectRef names one object; it is inventory's type, the one the engine
// (apply) consumes and the record stores, so no conversion is needed.
type ObjectRef = inventory.ObjectRef
