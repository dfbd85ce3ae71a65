package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/arbordev/arbor/internal/repofs"
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
	repo, err := openRepo(dir)
	if err != nil {
		return fail(exitUsage, err)
	}
	defer repo.Close()
	composePath, err := findCompose(repo, dir, o.compose)
	if err != nil {
		return fail(exitUsage, err)
	}
	for _, f := range initFiles {
		if err := checkTarget(repo.Root(), f, o.force); err != nil {
			return fail(exitUsage, fmt.Errorf("%s: %w", filepath.Join(dir, f), err))
		}
	}
	files, notes, err := initContent(repo, dir, composePath)
	for _, n := range notes {
		n.File = displayPath(dir, n.File)
		fmt.Fprintln(stderr, n)
	}
	if err != nil {
		return fail(exitNo, err)
	}
	for _, f := range initFiles {
		p := filepath.Join(dir, f)
		if err := writeNew(repo.Root(), f, files[f]); err != nil {
			return fail(exitUsage, fmt.Errorf("%s: %w", p, err))
		}
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	return nil
}

// errLink is init's refusal to write through a symbolic link: a repository
// may point .release.yaml or .release/ anywhere, and init would write there.
var errLink = errors.New("is a symbolic link; arbor init writes no file through a link (remove it first)")

// checkTarget says whether init may write name (slash-separated, in root):
// no component of it may be a symbolic link, its directories must be
// directories, and the file itself must not exist unless force is set (and
// then be a regular file, which is replaced).
func checkTarget(root *os.Root, name string, force bool) error {
	parts := strings.Split(name, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		info, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // nor does anything below it
		}
		if err != nil {
			return err
		}
		last := i == len(parts)-1
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s %w", p, errLink)
		case !last && !info.IsDir():
			return fmt.Errorf("%s is not a directory", p)
		case last && !info.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file", p)
		case last && !force:
			return errors.New("already exists (use --force to overwrite)")
		}
	}
	return nil
}

// writeNew writes data to name in root, creating its directories. The file
// is always created anew (O_CREATE|O_EXCL, which never follows a link): an
// existing regular file is removed first, so that nothing swapped in after
// checkTarget can make init write anywhere but a new file inside root.
func writeNew(root *os.Root, name string, data []byte) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := checkTarget(root, name, true); err != nil {
		return err
	}
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// findCompose returns the compose file's path relative to dir (slash-separated).
func findCompose(repo *repofs.Dir, dir, flag string) (string, error) {
	if flag == "" {
		for _, name := range composeNames {
			_, err := repo.Stat(name)
			if err == nil {
				return name, nil
			}
			if repofs.Refused(err) {
				return "", err
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
	rel = filepath.ToSlash(rel)
	if _, err := repo.Stat(rel); err != nil {
		return "", fmt.Errorf("--compose %s: %w", flag, err)
	}
	return rel, nil
}

// initContent converts the compose file and returns the three files' content.
func initContent(repo *repofs.Dir, dir, composePath string) (map[string][]byte, schema.Findings, error) {
	data, err := repofs.ReadFile(repo, composePath, schema.DefaultMaxFileSize)
	if err != nil {
		return nil, nil, err
	}
	res, notes := schema.FromCompose(repo, composePath, data)
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
