package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/arbordev/arbor/schema"
)

// composeNames are the compose files arbor init looks for, in order.
var composeNames = []string{"docker-compose.yml", "compose.yaml", "docker-compose.yaml", "compose.yml"}

type initOptions struct {
	compose string
	force   bool
}

func newInitCmd() *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a first .release.yaml from a docker-compose file",
		Long: `Write .release.yaml (pointer form), .release/application_template.yaml and
.release/environment_variables.yaml in DIR (default: the current directory),
derived from its docker-compose file (docker-compose.yml, compose.yaml,
docker-compose.yaml or compose.yml, or --compose FILE).

What cannot be carried over is printed as a warning. Existing files are
kept unless --force is given.`,
		Example: `  arbor init
  arbor init --compose deploy/compose.dev.yml ./shop`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runInit(cmd.OutOrStdout(), cmd.ErrOrStderr(), dir, o)
		},
	}
	cmd.Flags().StringVar(&o.compose, "compose", "", "the docker-compose file (default: found in DIR)")
	cmd.Flags().BoolVar(&o.force, "force", false, "overwrite existing files")
	return cmd
}

// initFiles are the files arbor init writes, relative to DIR.
var initFiles = []string{schema.DefaultConfigFile, schema.DefaultTemplateFile, schema.DefaultEnvVarsFile}

func runInit(stdout, stderr io.Writer, dir string, o initOptions) error {
	if _, err := repoTree(dir); err != nil {
		return fail(exitUsage, err)
	}
	composePath, err := findCompose(dir, o.compose)
	if err != nil {
		return fail(exitUsage, err)
	}
	if !o.force {
		for _, f := range initFiles {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return fail(exitUsage, fmt.Errorf("%s already exists (use --force to overwrite)", filepath.Join(dir, f)))
			}
		}
	}
	files, notes, err := initContent(dir, composePath)
	for _, n := range notes {
		n.File = displayPath(dir, n.File)
		fmt.Fprintln(stderr, n)
	}
	if err != nil {
		return fail(exitNo, err)
	}
	for _, f := range initFiles {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fail(exitUsage, err)
		}
		if err := os.WriteFile(p, files[f], 0o644); err != nil {
			return fail(exitUsage, err)
		}
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	return nil
}

// findCompose returns the compose file's path relative to dir (slash-separated).
func findCompose(dir, flag string) (string, error) {
	if flag == "" {
		for _, name := range composeNames {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return name, nil
			}
		}
		return "", fmt.Errorf("%s: no compose file (%s); name one with --compose", dir, strings.Join(composeNames, ", "))
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	absFile, err := filepath.Abs(flag)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(absDir, absFile)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("--compose %s: must be inside %s, so that its files can be found in the repository", flag, dir)
	}
	if _, err := os.Stat(absFile); err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}

// initContent converts the compose file and returns the three files' content.
func initContent(dir, composePath string) (map[string][]byte, schema.Findings, error) {
	tree := os.DirFS(dir)
	data, err := fs.ReadFile(tree, composePath)
	if err != nil {
		return nil, nil, err
	}
	res, notes := schema.FromCompose(tree, composePath, data)
	if res == nil {
		return nil, notes, errors.New("the compose file could not be converted")
	}
	if abs, err := filepath.Abs(dir); err == nil {
		res.Template.App = schema.DNSLabel(filepath.Base(abs))
	}
	tmpl, err := schema.MarshalTemplate(res.Template)
	if err != nil {
		return nil, notes, err
	}
	env, err := schema.MarshalEnvVars(res.EnvVars)
	if err != nil {
		return nil, notes, err
	}
	header := fmt.Sprintf("# Written by arbor init from %s; edit freely.\n", composePath)
	pointer := header + fmt.Sprintf("application_template: %s\nenvironment_variables: %s\n", schema.DefaultTemplateFile, schema.DefaultEnvVarsFile)
	return map[string][]byte{
		schema.DefaultConfigFile:   []byte(pointer),
		schema.DefaultTemplateFile: append([]byte(header), tmpl...),
		schema.DefaultEnvVarsFile:  append([]byte(header), env...),
	}, notes, nil
}
