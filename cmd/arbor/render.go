package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	kyaml "sigs.k8s.io/yaml"

	"github.com/arbordev/arbor/environment"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// renderOptions are the flags of arbor render.
type renderOptions struct {
	branch   string
	commit   string
	template string
	params   []string
	imports  []string
	output   string
	domain   string
	config   string

	defaultBranch string
	ingressClass  string
	registry      string
	tag           string
	maxConfig     int64
	kustomize     render.KustomizeLimits
}

func newRenderCmd() *cobra.Command {
	o := &renderOptions{}
	cmd := &cobra.Command{
		Use:   "render [DIR]",
		Short: "Print the Kubernetes objects of a branch's environment",
		Long: `render prints the objects arbor would apply for one branch of the repository
in DIR (default: the current directory), as multi-document YAML or a JSON List
that kubectl apply -f - accepts. It works offline: secrets with no value in git
are shown as placeholders, and imported apps are read from --import NAME=DIR.`,
		Example: `  arbor render --branch feature/login
  arbor render examples/storefront --branch main --import catalog=examples/catalog
  arbor render . --branch main --param plan=large --output json | kubectl apply --dry-run=client -f -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return o.run(cmd.OutOrStdout(), cmd.ErrOrStderr(), dir)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.branch, "branch", "", "the branch whose environment to render (required)")
	f.StringVar(&o.commit, "commit", "", "the commit SHA (default: unknown)")
	f.StringVar(&o.template, "template", "", "environment template (default: permanent for the tracking branch, else ephemeral)")
	f.StringArrayVar(&o.params, "param", nil, "a parameter value, NAME=VALUE (repeatable)")
	f.StringArrayVar(&o.imports, "import", nil, "an imported app's directory, NAME=DIR (repeatable)")
	f.StringVarP(&o.output, "output", "o", "yaml", "output format: yaml or json")
	f.StringVar(&o.domain, "domain", "localhost", "domain for hostnames when the template sets none")
	f.StringVar(&o.config, "file", schema.DefaultConfigFile, "path of .release.yaml in DIR")
	f.StringVar(&o.defaultBranch, "default-branch", "main", "the repository's default branch, the tracking branch when the template sets none")
	f.StringVar(&o.ingressClass, "ingress-class", "", "ingress class when the template sets none")
	f.StringVar(&o.registry, "image-registry", "", "registry prefix for images built from the repository")
	f.StringVar(&o.tag, "image-tag", "", "tag for images built from the repository (default: the commit SHA)")
	registerMaxConfig(cmd, &o.maxConfig)
	registerKustomize(cmd, &o.kustomize)
	_ = cmd.MarkFlagRequired("branch")
	return cmd
}

func (o *renderOptions) run(stdout, stderr io.Writer, dir string) error {
	if o.output != "yaml" && o.output != "json" {
		return fail(exitUsage, fmt.Errorf("--output %q: want yaml or json", o.output))
	}
	params, err := keyValues("--param", o.params)
	if err != nil {
		return fail(exitUsage, err)
	}
	imports, err := keyValues("--import", o.imports)
	if err != nil {
		return fail(exitUsage, err)
	}
	tree, err := openRepo(dir)
	if err != nil {
		return fail(exitUsage, err)
	}
	defer tree.Close()
	opts := schema.LoadOptions{Parameters: params, MaxFileSize: o.maxConfig}
	cfg, err := loadDir(stderr, tree, dir, o.config, opts, exitNo)
	if err != nil {
		return err
	}
	in := render.Input{
		Config: cfg,
		Tree:   tree,
		Context: render.Context{
			App:                 appName(dir),
			Branch:              o.branch,
			Commit:              o.commit,
			EnvironmentTemplate: o.template,
			DefaultBranch:       o.defaultBranch,
			Domain:              o.domain,
			IngressClass:        o.ingressClass,
			Image:               render.ImageSettings{Registry: o.registry, Tag: o.tag},
			Parameters:          params,
			SecretPlaceholders:  true,
			Kustomize:           o.kustomize,
			Charts:              render.ChartOptions{SkipRemote: true}, // the daemon fetches remote charts
		},
	}
	if in.Imports, err = loadImports(stderr, cfg, imports, o.branch, o.commit, o.maxConfig, exitNo); err != nil {
		return err
	}
	env, err := render.Render(in)
	if err != nil {
		return fail(exitNo, err)
	}
	for _, w := range env.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	return writeObjects(stdout, env, o.output)
}

// loadDir loads a directory's configuration, printing its findings. A
// missing or invalid configuration fails with the given exit code: render
// answers "no" (1); the cluster commands, where 1 means "changes", fail with 2.
func loadDir(stderr io.Writer, tree fs.FS, dir, file string, opts schema.LoadOptions, code int) (*schema.Config, error) {
	cfg, findings, err := schema.Load(tree, file, opts)
	if errors.Is(err, schema.ErrNoConfig) {
		return nil, fail(code, fmt.Errorf("%s: no %s and no %s", dir, file, schema.DefaultTemplateFile))
	}
	if err != nil {
		return nil, fail(code, fmt.Errorf("%s: %w", dir, err))
	}
	for _, f := range findings {
		f.File = displayPath(dir, f.File)
		fmt.Fprintln(stderr, f)
	}
	if findings.HasErrors() {
		return nil, fail(code, fmt.Errorf("%s: the configuration is invalid", dir))
	}
	return cfg, nil
}

// loadImports loads the apps named in cfg's app_imports from the directories
// given with --import (NAME → DIR), at the pinned branch or else branch,
// reading configuration files of at most maxConfig bytes. A missing
// directory or configuration fails with the given exit code. The imported
// repositories stay open for the render.
func loadImports(stderr io.Writer, cfg *schema.Config, dirs map[string]string, branch, commit string, maxConfig int64, code int) ([]render.Import, error) {
	var out []render.Import
	for _, im := range cfg.Template.AppImports {
		dir, ok := dirs[im.Name]
		if !ok {
			return nil, fail(code, fmt.Errorf("app_imports %s: pass the app's directory with --import %s=DIR", im.Name, im.Name))
		}
		tree, err := openRepo(dir)
		if err != nil {
			return nil, fail(exitUsage, err)
		}
		b := im.Branch
		if b == "" {
			b = branch
		}
		imp, findings, err := environment.Import(environment.Imported{
			Import: im, Branch: b, Commit: commit, Tree: tree, Path: schema.DefaultConfigFile,
			Load: schema.LoadOptions{MaxFileSize: maxConfig},
		})
		for _, f := range findings {
			f.File = displayPath(dir, f.File)
			fmt.Fprintln(stderr, f)
		}
		if err != nil {
			return nil, fail(code, fmt.Errorf("%s: %w", dir, err))
		}
		out = append(out, imp)
	}
	return out, nil
}

// appName is the app's name when the template sets none: the directory's
// name as a DNS label. (render lets the template's app win over it.)
func appName(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "app"
	}
	name := strings.Trim(strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, filepath.Base(abs)), "-")
	if name == "" || len(name) > 40 {
		return render.EnvID(filepath.Base(abs))
	}
	return name
}

func keyValues(flag string, list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want NAME=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

// writeObjects prints the objects as multi-document YAML or a JSON v1 List.
func writeObjects(w io.Writer, env *render.Environment, format string) error {
	if format == "json" {
		items := make([]any, len(env.Objects))
		for i, o := range env.Objects {
			items[i] = o.Object
		}
		b, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": items}, "", "  ")
		if err != nil {
			return fail(exitNo, err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	for _, o := range env.Objects {
		b, err := kyaml.Marshal(o.Object)
		if err != nil {
			return fail(exitNo, err)
		}
		if _, err := fmt.Fprintf(w, "---\n%s", b); err != nil {
			return err
		}
	}
	return nil
}
