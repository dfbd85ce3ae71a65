package render

import (
	"fmt"
	"io/fs"

	"github.com/arbordev/arbor/schema"
)

// SampleBranch is the branch CheckTemplates renders for.
const SampleBranch = "arbor-validate/sample"

// CheckTemplates renders cfg offline, once for each environment template it
// can be rendered with (permanent, ephemeral and each one it defines), for
// SampleBranch, with secrets as placeholders and every declared parameter
// given a value, and returns one error per template that fails, prefixed with
// the template's name. It is what `arbor validate` runs after the schema
// checks (docs/release-yaml.md#validation). A template with app_imports cannot be rendered without
// the imported apps: CheckTemplates then returns nil.
func CheckTemplates(cfg *schema.Config, tree fs.FS, app, domain string) []error {
	if cfg == nil || cfg.Template == nil || len(cfg.Template.AppImports) > 0 {
		return nil
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
	var errs []error
	for _, n := range names {
		_, err := Render(Input{Config: cfg, Tree: tree, Context: Context{
			App: app, Branch: SampleBranch, EnvironmentTemplate: n, Domain: domain,
			Parameters: params, SecretPlaceholders: true,
		}})
		if err != nil {
			errs = append(errs, fmt.Errorf("environment template %s: %w", n, err))
		}
	}
	return errs
}
