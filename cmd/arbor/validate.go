package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// validateOptions are the flags of arbor validate.
type validateOptions struct {
	strict    bool
	format    string
	params    []string
	maxConfig int64
	kustomize render.KustomizeLimits
	// fetchCharts fetches remote charts into chartCache and renders them;
	// without it they are checked by reference only.
	fetchCharts bool
	chartCache  string
	ctx         context.Context // for the fetches; set from the command
}

func newValidateCmd() *cobra.Command {
	var o validateOptions
	cmd := &cobra.Command{
		Use:   "validate [DIR...]",
		Short: "Check the .release.yaml of one or more repositories",
		Long: `Check the configuration of each repository directory (default: the current
directory): the JSON Schema, then the meaning (names, references, cycles, ports,
quantities, durations, parameters), then a render of every environment
template. Helm charts in the repository are rendered (values checked against
values.schema.json); remote charts are checked by reference only, unless
--fetch-charts fetches and renders them.

Findings print as FILE:LINE:COL: severity: field: message.
Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error or no configuration.`,
		Example: `  arbor validate
  arbor validate --strict --format github services/api services/web
  arbor validate --param db_size=10Gi`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ctx = cmd.Context()
			return runValidate(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, o)
		},
	}
	cmd.Flags().BoolVar(&o.fetchCharts, "fetch-charts", false, "fetch the remote Helm charts the template names (any repository it names) and render them; without it they are checked by reference only")
	cmd.Flags().StringVar(&o.chartCache, "chart-cache", defaultChartCache(), "the directory where --fetch-charts caches charts")
	cmd.Flags().BoolVar(&o.strict, "strict", false, "treat unknown keys as errors")
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, json or github (GitHub Actions annotations)")
	cmd.Flags().StringArrayVar(&o.params, "param", nil, "a parameter value, NAME=VALUE (repeatable)")
	registerMaxConfig(cmd, &o.maxConfig)
	registerKustomize(cmd, &o.kustomize)
	return cmd
}

func runValidate(stdout, stderr io.Writer, dirs []string, o validateOptions) error {
	switch o.format {
	case "text", "json", "github":
	default:
		return fail(exitUsage, fmt.Errorf("unknown --format %q (want text, json or github)", o.format))
	}
	params, err := keyValues("--param", o.params)
	if err != nil {
		return fail(exitUsage, err)
	}
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	opts := schema.LoadOptions{Strict: o.strict, Parameters: params, MaxFileSize: o.maxConfig}
	var all schema.Findings
	var usage []error // directories that could not be checked; the others still are
	for _, dir := range dirs {
		found, err := validateDir(dir, opts, o)
		if err != nil {
			usage = append(usage, err)
			continue
		}
		all = append(all, found...)
		if o.format == "text" {
			fmt.Fprintf(stderr, "%s: %s\n", schema.SafeText(dir), summary(found))
		}
	}
	if err := printFindings(stdout, o.format, all); err != nil {
		return fail(exitUsage, err)
	}
	if len(usage) > 0 {
		return fail(exitUsage, errors.Join(usage...))
	}
	if all.HasErrors() {
		return fail(exitNo, nil)
	}
	return nil
}

// validateDir checks the repository at dir and returns its findings, with
// file paths relative to the current directory. Each pass appends findings
// whose paths are relative to the repository root.
func validateDir(dir string, opts schema.LoadOptions, o validateOptions) (schema.Findings, error) {
	tree, err := openRepo(dir)
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	cfg, findings, err := schema.Load(tree, schema.DefaultConfigFile, opts)
	if errors.Is(err, schema.ErrNoConfig) {
		return nil, fmt.Errorf("%s: no %s or %s found", dir, schema.DefaultConfigFile, schema.DefaultTemplateFile)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if !findings.HasErrors() {
		check := render.CheckOptions{Kustomize: o.kustomize}
		if o.fetchCharts && o.ctx != nil {
			var fetched schema.Findings
			check.RemoteCharts, fetched = fetchCharts(o.ctx, cfg, o.chartCache)
			findings = append(findings, fetched...)
		}
		findings = append(findings, renderFindings(cfg, tree, dir, check)...)
	}
	for i := range findings {
		findings[i].File = displayPath(dir, findings[i].File)
	}
	findings.Sort()
	return findings, nil
}

// renderFindings renders every environment template of a schema-valid
// configuration for a sample branch (docs/release-yaml.md#validation) and turns each render error
// into an error finding at the template file, and each render warning (a
// kind whose scope cannot be checked offline) into a warning there.
// Rendering a configuration the schema already rejected would only repeat
// its findings.
func renderFindings(cfg *schema.Config, tree fs.FS, dir string, check render.CheckOptions) schema.Findings {
	app := cfg.Template.App
	if app == "" {
		app = appName(dir)
	}
	var out schema.Findings
	errs, warnings := render.CheckTemplatesWith(cfg, tree, app, "", check)
	for _, err := range errs {
		out = append(out, schema.Finding{
			Position: cfg.Position(""),
			Severity: schema.SeverityError,
			Message:  "render: " + err.Error(),
		})
	}
	for _, w := range warnings {
		out = append(out, schema.Finding{Position: cfg.Position(""), Severity: schema.SeverityWarning, Message: "render: " + w})
	}
	return out
}

// displayPath joins a repository directory and a path inside it, relative to
// the current directory when that is shorter to read.
func displayPath(dir, file string) string {
	p := filepath.Join(dir, filepath.FromSlash(file))
	if !filepath.IsAbs(p) {
		return p
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return p
}

func summary(fs schema.Findings) string {
	errs := len(fs.Errors())
	warns := len(fs) - errs
	switch {
	case errs > 0:
		return fmt.Sprintf("invalid (%s, %s)", plural(errs, "error"), plural(warns, "warning"))
	case warns > 0:
		return fmt.Sprintf("valid (%s)", plural(warns, "warning"))
	default:
		return "valid"
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func printFindings(w io.Writer, format string, fs schema.Findings) error {
	switch format {
	case "json":
		if fs == nil {
			fs = schema.Findings{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(fs)
	case "github":
		for _, f := range fs {
			if _, err := fmt.Fprintln(w, githubAnnotation(f)); err != nil {
				return err
			}
		}
	default:
		for _, f := range fs {
			if _, err := fmt.Fprintln(w, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// githubAnnotation formats a finding as a GitHub Actions workflow command.
// Its text is quoted with schema.SafeText first, as in the text format (the
// log shows it raw to whoever reads it in a terminal); a message's newlines
// stay, and are encoded as GitHub asks.
func githubAnnotation(f schema.Finding) string {
	f.File, f.Field, f.Message = schema.SafeText(f.File), schema.SafeText(f.Field), schema.SafeLines(f.Message)
	level := "error"
	if f.Severity == schema.SeverityWarning {
		level = "warning"
	}
	props := []string{"file=" + escapeProperty(filepath.ToSlash(f.File))}
	if f.Line > 0 {
		props = append(props, fmt.Sprintf("line=%d", f.Line))
	}
	if f.Column > 0 {
		props = append(props, fmt.Sprintf("col=%d", f.Column))
	}
	if f.Field != "" {
		props = append(props, "title="+escapeProperty(f.Field))
	}
	msg := f.Message
	if f.Field != "" {
		msg = f.Field + ": " + msg
	}
	return fmt.Sprintf("::%s %s::%s", level, strings.Join(props, ","), escapeData(msg))
}

// escapeData and escapeProperty follow GitHub's workflow-command encoding.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
