package render

import (
	"fmt"
	"io/fs"
	"slices"

	"github.com/arbordev/arbor/schema"
)

// SampleBranch is the branch CheckTemplates renders for.
const SampleBranch = "arbor-validate/sample"

// CheckTemplates renders cfg offline, once for each environment template it
// can be rendered with (permanent, ephemeral and each one it defines), for
// SampleBranch, with secrets as placeholders and every declared parameter
// given a value, and returns one error per template that fails, prefixed with
// the template's name, and the warnings of every render (Environment.Warnings),
// each once. It is what `arbor validate` runs after the schema checks
// (docs/release-yaml.md#validation). A template with app_imports cannot be rendered without the imported
// apps: CheckTemplates then returns nothing.
func CheckTemplates(cfg *schema.Config, tree fs.FS, app, domain string) (errs []error, warnings []string) {
	return CheckTemplatesWithin(cfg, tree, app, domain, KustomizeLimits{})
}

// CheckTemplatesWithin is CheckTemplates with kustomize builds bounded by
// lim (zero fields take the defaults).
func CheckTemplatesWithin(cfg *schema.Config, tree fs.FS, app, domain string, lim KustomizeLimits) (errs []error, warnings []string) {
	return CheckTemplatesWith(cfg, tree, app, domain, CheckOptions{Kustomize: lim})
}

// CheckOptions are the settings of CheckTemplatesWith.
type CheckOptions struct {
	Kustomize KustomizeLimits
	// Charts say what cluster charts render for and bound them; remote
	// charts not in RemoteCharts are always skipped with a warning (checked
	// by reference only).
	Charts ChartOptions
	// RemoteCharts are the remote charts fetched for the check (arbor
	// validate --fetch-charts), by chart name.
	RemoteCharts map[string][]byte
}

// CheckTemplatesWith is CheckTemplates with options: local charts are
// rendered fully (values.schema.json included), remote ones when given.
func CheckTemplatesWith(cfg *schema.Config, tree fs.FS, app, domain string, o CheckOptions) (errs []error, warnings []string) {
	lim := o.Kustomize
	charts := o.Charts
	charts.SkipRemote = true
	if cfg == nil || cfg.Template == nil || len(cfg.Template.AppImports) > 0 {
		return nil, nil
	}
	names := []string{TemplatePermanent, TemplateEphemeral}
	for _, et := range cfg.Template.EnvironmentTemplates {
		if et.Name != TemplatePermanent && et.Name != TemplateEphemeral {
			names = append(names, et.Name)
		}
	}
	params := map[string]string{}
	for _, p := range cfg.Template.Parameters {
		if p.Default == "" {
			params[p.Name] = "sample"
		}
	}
	if domain == "" {
		domain = "example.com"
	}
	for _, n := range names {
		env, err := Render(Input{Config: cfg, Tree: tree, Context: Context{
			App: app, Branch: SampleBranch, EnvironmentTemplate: n, Domain: domain,
			Parameters: params, SecretPlaceholders: true, Kustomize: lim, Charts: charts,
		}, RemoteCharts: o.RemoteCharts})
		if err != nil {
			errs = append(errs, fmt.Errorf("environment template %s: %w", n, err))
			continue
		}
		for _, w := range env.Warnings {
			if !slices.Contains(warnings, w) {
				warnings = append(warnings, w)
			}
		}
	}
	return errs, warnings
}
