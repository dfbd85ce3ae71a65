package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/schema"
)

// Environment template names chosen by branch when none is given (docs/release-yaml.md#environments).
const (
	TemplatePermanent = "permanent"
	TemplateEphemeral = "ephemeral"
)

// app is one app of the environment as render sees it: the importing app or
// one of its imports, with parameters already expanded.
type app struct {
	name     string
	imported bool
	// external: the template has charts or infrastructure, whose services
	// arbor does not deploy; hosts and rules naming them are left out.
	external bool
	branch   string
	commit   string
	cfgHash  string
	t        *schema.Template
	ev       *schema.EnvVars
	tree     fs.FS
	domain   string
	envTmpl  *schema.EnvironmentTemplate
	secrets  map[string]string
	exclude  map[string]bool
	services []*schema.Service          // deployed services, template order
	byName   map[string]*schema.Service // every service of the template, deployed or not
	images   map[string]string          // resolved image per service
	params   map[string]string          // parameter values, for charts' values files
	charts   []string                   // charts rendered (not skipped), template order

	placeholders   bool // Context.SecretPlaceholders
	mappingChecked bool
	mappingErr     error
}

// renderer holds the state of one Render call.
type renderer struct {
	in        Input
	env       *Environment
	apps      []*app
	labels    map[string]string // common labels
	objs      []map[string]any
	owner     map[string]string // "Kind/name" → app that generated it, for clash errors
	routes    []hostRoute
	injected  map[string]string // *_INGRESS_HOST/_URL, environment-wide
	scheme    string
	runHash   string
	envHashes map[string]string // service → hash of its env ConfigMap/Secret and files
}

// Render renders the environment of Input. It never panics: a panic in any
// part of rendering is returned as an error.
func Render(in Input) (env *Environment, err error) {
	defer func() {
		if r := recover(); r != nil {
			env, err = nil, fmt.Errorf("render: internal error: %v", r)
		}
	}()
	if in.Config == nil || in.Config.Template == nil {
		return nil, errors.New("render: no configuration")
	}
	r := &renderer{in: in, owner: map[string]string{}, envHashes: map[string]string{}}
	if err := r.run(); err != nil {
		prefix := r.env.App + "@" + in.Context.Branch
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	return r.env, nil
}

// run renders the environment as a list of named steps.
func (r *renderer) run() error {
	r.start()
	for _, step := range []func() error{
		r.loadApps,
		r.checkClashes,
		r.resolveImages,
		r.routeHosts,
		r.renderNamespace,
		r.renderApps,
		r.renderCharts,
		r.resolveChartRoutes,
		r.renderIngress,
		r.renderKustomize,
		r.renderWorkflows,
		r.renderLinks,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return r.finish()
}

// start fills the environment's identity: app, env id, namespace, template.
func (r *renderer) start() {
	c := r.in.Context
	t := r.in.Config.Template
	name := c.App
	if t.App != "" && !c.AppFixed {
		name = t.App
	}
	envID := EnvID(c.Branch)
	ns := c.Namespace
	if ns == "" {
		ns = Namespace(name, envID)
	}
	r.env = &Environment{
		App:                   name,
		Branch:                c.Branch,
		Commit:                commitOrUnknown(c.Commit),
		EnvID:                 envID,
		Namespace:             ns,
		Template:              chooseTemplate(t, c),
		AutoDeploy:            t.AutoDeploy == nil || *t.AutoDeploy,
		ParallelizeAppImports: t.ParallelizeAppImports && len(r.in.Imports) > 0,
		Tasks:                 map[string][]ObjectRef{},
		Workflows:             map[string]Workflow{},
		HaltOnError:           map[string]bool{},
	}
	r.env.ConfigHash = r.configHash()
	r.runHash = shortHash(r.env.Commit+"\x00"+r.env.ConfigHash, 8)
	r.labels = map[string]string{
		LabelManagedBy: ManagedByValue,
		LabelApp:       name,
		LabelEnv:       envID,
	}
	if c.Install != "" {
		r.labels[LabelInstall] = c.Install
	}
}

func commitOrUnknown(c string) string {
	if c == "" {
		return "unknown"
	}
	return c
}

// chooseTemplate picks the environment template (docs/release-yaml.md#environments): the one asked for,
// else the first whose branches globs match, else permanent for the tracking
// branch and ephemeral for the rest.
func chooseTemplate(t *schema.Template, c Context) string {
	if c.EnvironmentTemplate != "" {
		return c.EnvironmentTemplate
	}
	for _, et := range t.EnvironmentTemplates {
		if et.Branches.MatchAny(c.Branch) {
			return et.Name
		}
	}
	tracking := t.TrackingBranch
	if tracking == "" {
		tracking = c.DefaultBranch
	}
	if tracking != "" && c.Branch == tracking {
		return TemplatePermanent
	}
	return TemplateEphemeral
}

func findEnvTemplate(t *schema.Template, name string) *schema.EnvironmentTemplate {
	for i := range t.EnvironmentTemplates {
		if t.EnvironmentTemplates[i].Name == name {
			return &t.EnvironmentTemplates[i]
		}
	}
	return nil
}

// configHash identifies everything but the code: the configuration files,
// the template chosen, parameters, imports and the daemon's settings.
func (r *renderer) configHash() string {
	c := r.in.Context
	h := r.secretHash() // it covers the secrets_from values
	put := func(parts ...string) {
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
	}
	put(configContentHash(r.in.Config), r.env.Template, c.Domain, c.IngressClass, c.Image.Registry, c.Image.Tag)
	putMap := func(m map[string]string) {
		keys := sortedKeys(m)
		for _, k := range keys {
			put(k, m[k])
		}
		put("--")
	}
	putMap(c.Parameters)
	putMap(c.StorageClasses)
	putMap(c.Secrets) // only a digest of them leaves this function
	for _, im := range r.in.Imports {
		// Not the commit: a new commit on an imported branch is a patch (docs/release-yaml.md#app-imports).
		put(im.App, im.Branch, configContentHash(im.Config), strings.Join(im.ExcludeServices, ","))
		putMap(im.Parameters)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// configContentHash is the loader's hash of the files, or a hash of the
// decoded configuration when the caller built it by hand.
func configContentHash(c *schema.Config) string {
	if c == nil {
		return ""
	}
	if c.Hash != "" {
		return c.Hash
	}
	b, _ := json.Marshal(struct {
		T *schema.Template
		E *schema.EnvVars
	}{c.Template, c.EnvVars})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// loadApps prepares the importing app and each import: environment template
// overrides and parameters applied, excluded and static services dropped.
func (r *renderer) loadApps() error {
	c := r.in.Context
	main, err := r.loadApp(r.env.App, false, c.Branch, r.env.Commit, r.in.Config, r.in.Tree, c.Parameters, c.Secrets, nil)
	if err != nil {
		return err
	}
	if c.EnvironmentTemplate != "" && main.envTmpl == nil && len(main.t.EnvironmentTemplates) > 0 &&
		c.EnvironmentTemplate != TemplatePermanent && c.EnvironmentTemplate != TemplateEphemeral {
		return fmt.Errorf("environment template %q is not defined in environment_templates", c.EnvironmentTemplate)
	}
	if main.envTmpl != nil {
		r.env.ExpiresAfter = main.envTmpl.ExpiresAfter
	}
	r.apps = append(r.apps, main)
	given := map[string]bool{}
	for _, im := range r.in.Imports {
		given[im.App] = true
	}
	for _, ai := range main.t.AppImports {
		if !given[ai.Name] {
			return fmt.Errorf("app_imports %s: the imported app was not given (is it configured in the daemon?)", ai.Name)
		}
	}
	for _, im := range r.in.Imports {
		if im.Config == nil || im.Config.Template == nil {
			return fmt.Errorf("app_imports %s: no configuration", im.App)
		}
		a, err := r.loadApp(im.App, true, im.Branch, commitOrUnknown(im.Commit), im.Config, im.Tree, im.Parameters, im.Secrets, im.ExcludeServices)
		if err != nil {
			return fmt.Errorf("app_imports %s: %w", im.App, err)
		}
		r.apps = append(r.apps, a)
		r.env.Imports = append(r.env.Imports, ImportedApp{App: im.App, Branch: im.Branch, Commit: a.commit})
	}
	return nil
}

// loadApp prepares one app: its environment template, parameters expanded
// through a copy of its template and env vars, and its deployed services.
func (r *renderer) loadApp(name string, imported bool, branch, commit string, cfg *schema.Config, tree fs.FS,
	params, secrets map[string]string, exclude []string) (*app, error) {
	src := cfg.Template
	et := findEnvTemplate(src, r.env.Template)
	values, err := parameterValues(src, et, params)
	if err != nil {
		return nil, err
	}
	expand := func(s string) (string, error) {
		if !strings.Contains(s, "${parameters.") {
			return s, nil
		}
		out, err := expandVars(s, func(n string) (string, bool) {
			p, ok := strings.CutPrefix(n, "parameters.")
			if !ok {
				return "", false
			}
			v, ok := values[p]
			if !ok {
				return "", false
			}
			return v, true
		}, false)
		if err != nil {
			return "", err
		}
		if i := strings.Index(out, "${parameters."); i >= 0 {
			name, _, _ := strings.Cut(out[i+2:], "}")
			return "", fmt.Errorf("%s: parameter is not declared in parameters", name)
		}
		return out, nil
	}
	t, err := expandStrings(src, expand)
	if err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	ev, err := expandStrings(cfg.EnvVars, expand)
	if err != nil {
		return nil, fmt.Errorf("environment variables: parameters: %w", err)
	}
	if ev == nil {
		ev = &schema.EnvVars{}
	}
	a := &app{
		name: name, imported: imported, external: cfg.HasExternalServices(), branch: branch, commit: commit, cfgHash: configContentHash(cfg),
		t: t, ev: ev, tree: tree, secrets: secrets, placeholders: r.in.Context.SecretPlaceholders,
		exclude: map[string]bool{}, byName: map[string]*schema.Service{}, images: map[string]string{},
		params: values,
	}
	a.envTmpl = findEnvTemplate(t, r.env.Template)
	a.domain = t.Domain
	if a.domain == "" {
		a.domain = r.in.Context.Domain
	}
	for _, x := range exclude {
		a.exclude[x] = true
	}
	for i := range t.Services {
		s := &t.Services[i]
		if s.Name == "" {
			return nil, fmt.Errorf("services[%d]: name is required", i)
		}
		if _, dup := a.byName[s.Name]; dup {
			return nil, fmt.Errorf("services.%s: defined twice", s.Name)
		}
		a.byName[s.Name] = s
		if s.Static || a.exclude[s.Name] {
			continue
		}
		a.services = append(a.services, s)
	}
	return a, nil
}

// parameterValues gives each declared parameter its value: the daemon's,
// else the environment template's default, else the template's default.
func parameterValues(t *schema.Template, et *schema.EnvironmentTemplate, given map[string]string) (map[string]string, error) {
	decl := map[string]schema.Parameter{}
	var order []string
	add := func(ps []schema.Parameter) {
		for _, p := range ps {
			if _, seen := decl[p.Name]; !seen {
				order = append(order, p.Name)
			}
			decl[p.Name] = p
		}
	}
	add(t.Parameters)
	if et != nil {
		add(et.Parameters)
	}
	values := make(map[string]string, len(decl))
	for _, n := range order {
		p := decl[n]
		if v, ok := given[n]; ok {
			values[n] = v
			continue
		}
		if p.Default != "" || p.Optional {
			values[n] = string(p.Default)
			continue
		}
		return nil, fmt.Errorf("parameters.%s: required parameter has no value (set it in the daemon config or give it a default)", n)
	}
	return values, nil
}

// checkClashes refuses two apps defining the same service, job or cron job.
func (r *renderer) checkClashes() error {
	seen := map[string]string{}
	for _, a := range r.apps {
		var names []string
		for _, s := range a.services {
			names = append(names, "services."+s.Name)
		}
		for _, j := range a.t.Jobs {
			names = append(names, "jobs."+j.Name)
		}
		for _, j := range a.t.CronJobs {
			names = append(names, "cron_jobs."+j.Name)
		}
		for _, n := range names {
			if other, ok := seen[n]; ok && other != a.name {
				return fmt.Errorf("%s is defined by both app %s and app %s", n, other, a.name)
			}
			seen[n] = a.name
		}
	}
	return nil
}

// resolveImages gives repo-built services their registry prefix and tag.
func (r *renderer) resolveImages() error {
	for _, a := range r.apps {
		for _, s := range a.t.Services {
			img, err := r.resolveImage(a, &s)
			if err != nil {
				return fmt.Errorf("services.%s.image: %w", s.Name, err)
			}
			a.images[s.Name] = img
		}
	}
	return nil
}

// resolveImage gives a service its image reference (docs/release-yaml.md#services):
// a built one pinned by digest when the daemon gives the pin.
func (r *renderer) resolveImage(a *app, s *schema.Service) (string, error) {
	img, err := r.unpinnedImage(a, s)
	if err != nil {
		return "", err
	}
	if pin, ok := r.in.Context.Image.Pinned[img]; ok && (s.HasRepo || s.Build != nil) {
		return pin, nil
	}
	return img, nil
}

// unpinnedImage is a service's image reference from the template and the
// image settings: a built service's gets the registry prefix and the tag.
func (r *renderer) unpinnedImage(a *app, s *schema.Service) (string, error) {
	built := s.HasRepo || s.Build != nil
	img := strings.TrimSpace(s.Image)
	if !built {
		if img == "" && !s.Static {
			return "", errors.New("required for a service not built from the repository")
		}
		return img, nil
	}
	if img == "" {
		img = a.name + "/" + schema.ObjectName(s.Name)
	}
	if imageHasTag(img) {
		return img, nil
	}
	set := r.in.Context.Image
	if set.Registry != "" {
		img = strings.TrimRight(set.Registry, "/") + "/" + img
	}
	tag := set.Tag
	if tag == "" {
		tag = "${RELEASE_COMMIT_SHA}"
	}
	tag, err := expandVars(tag, func(n string) (string, bool) {
		switch n {
		case "RELEASE_COMMIT_SHA":
			return a.commit, true
		case "RELEASE_COMMIT_SHORT":
			return shortCommit(a.commit), true
		case "RELEASE_BRANCH_NAME":
			return branchSlug(a.branch), true
		case "RELEASE_ENV_ID":
			return r.env.EnvID, true
		}
		return "", false
	}, true)
	if err != nil {
		return "", fmt.Errorf("image tag setting: %w", err)
	}
	if !tagRE.MatchString(tag) {
		return "", fmt.Errorf("image tag %q from the image settings is not a valid tag", tag)
	}
	return img + ":" + tag, nil
}

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// imageHasTag reports whether an image reference names a tag or digest.
func imageHasTag(img string) bool {
	if strings.Contains(img, "@") {
		return true
	}
	last := img[strings.LastIndexByte(img, '/')+1:]
	return strings.Contains(last, ":")
}

// imageName is an image reference without its tag or digest.
func imageName(img string) string {
	if i := strings.IndexByte(img, '@'); i >= 0 {
		img = img[:i]
	}
	slash := strings.LastIndexByte(img, '/')
	if i := strings.LastIndexByte(img, ':'); i > slash {
		img = img[:i]
	}
	return img
}

func shortCommit(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}

// finish stamps every object with labels and annotations, checks names are
// unique, sorts the objects and wraps them as unstructured.
func (r *renderer) finish() error {
	seen := map[string]bool{}
	for _, o := range r.objs {
		k := objKey(o)
		if seen[k] {
			return fmt.Errorf("%s: two generated objects would have this name; rename one of the entries that produce it", k)
		}
		seen[k] = true
	}
	sort.SliceStable(r.objs[1:], func(i, j int) bool {
		a, b := r.objs[1+i], r.objs[1+j]
		ka, kb := kindRank(a), kindRank(b)
		if ka != kb {
			return ka < kb
		}
		if ga, gb := str(a, "apiVersion"), str(b, "apiVersion"); ga != gb {
			return ga < gb
		}
		if ka, kb := str(a, "kind"), str(b, "kind"); ka != kb {
			return ka < kb
		}
		return objName(a) < objName(b)
	})
	r.env.Objects = make([]*unstructured.Unstructured, len(r.objs))
	for i, o := range r.objs {
		r.env.Objects[i] = &unstructured.Unstructured{Object: o}
	}
	for k := range r.env.Tasks {
		refs := r.env.Tasks[k]
		slices.SortFunc(refs, func(a, b ObjectRef) int {
			return strings.Compare(a.Kind+"/"+a.Name, b.Kind+"/"+b.Name)
		})
	}
	sort.Slice(r.env.URLs, func(i, j int) bool {
		if r.env.URLs[i].Service != r.env.URLs[j].Service {
			return r.env.URLs[i].Service < r.env.URLs[j].Service
		}
		return r.env.URLs[i].URL < r.env.URLs[j].URL
	})
	return nil
}

// kindOrder is the order objects are listed in: what others depend on first.
var kindOrder = map[string]int{
	"Namespace": 0, "CustomResourceDefinition": 1, "ServiceAccount": 2, "Role": 3, "RoleBinding": 4,
	"ConfigMap": 5, "Secret": 6, "PersistentVolumeClaim": 7, "Service": 8, "Deployment": 9,
	"StatefulSet": 10, "DaemonSet": 11, "HorizontalPodAutoscaler": 12, "Job": 13, "CronJob": 14,
	"Ingress": 16,
}

func kindRank(o map[string]any) int {
	if k, ok := kindOrder[str(o, "kind")]; ok {
		return k
	}
	return 15
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
