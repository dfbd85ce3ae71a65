package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/environment"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/state"
)

// envOptions are the flags shared by diff, apply and delete: which
// environment (a directory and a branch), and which cluster.
type envOptions struct {
	cluster     clusterFlags
	branch      string
	commit      string
	template    string
	app         string
	file        string
	domain      string
	params      []string
	imports     []string
	secretsFrom string
	force       bool
	allowCS     bool
	timeout     time.Duration
	maxConfig   int64
	kustomize   render.KustomizeLimits
}

func (o *envOptions) register(cmd *cobra.Command) {
	o.cluster.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.branch, "branch", "", "the branch whose environment this is (required)")
	f.StringVar(&o.commit, "commit", "", "the commit SHA the environment runs (recorded in its state)")
	f.StringVar(&o.template, "template", "", "environment template (default: permanent for the tracking branch, else ephemeral)")
	f.StringVar(&o.app, "app", "", "the app's name (default: the template's app, else the directory's name)")
	f.StringVar(&o.file, "file", schema.DefaultConfigFile, "path of .release.yaml in DIR")
	f.StringVar(&o.domain, "domain", "localhost", "domain for hostnames when the template sets none")
	f.StringArrayVar(&o.params, "param", nil, "a parameter value, NAME=VALUE (repeatable)")
	f.StringArrayVar(&o.imports, "import", nil, "an imported app's directory, NAME=DIR (repeatable)")
	f.StringVar(&o.secretsFrom, "secrets-from", "", "NAMESPACE/NAME of a Secret holding the values of secret variables with no value in git")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the environment to be ready (or gone)")
	registerMaxConfig(cmd, &o.maxConfig)
	registerKustomize(cmd, &o.kustomize)
	_ = cmd.MarkFlagRequired("branch")
}

// registerApply adds the flags of the commands that write.
func (o *envOptions) registerApply(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.force, "force-conflicts", false, "take ownership of fields another field manager owns")
	f.BoolVar(&o.allowCS, "allow-cluster-scoped", false, "allow cluster-scoped objects (from kustomize) besides the environment's namespace")
}

// session is what a command works with: the cluster's clients and engine.
type session struct {
	cfg    *rest.Config
	cs     kubernetes.Interface
	engine *apply.Engine
}

func (o *envOptions) connect() (*session, error) {
	cfg, err := o.cluster.restConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	e, err := apply.New(cfg, apply.Options{Force: o.force, AllowClusterScoped: o.allowCS})
	if err != nil {
		return nil, err
	}
	return &session{cfg: cfg, cs: cs, engine: e}, nil
}

// open connects to the cluster and renders the environment of dir, for
// the commands that compare it with the cluster (diff, apply).
func (o *envOptions) open(ctx context.Context, stderr io.Writer, dir string) (*session, *render.Environment, error) {
	s, err := o.connect()
	if err != nil {
		return nil, nil, fail(exitUsage, err)
	}
	env, err := o.render(ctx, stderr, s, dir, false)
	if err != nil {
		return nil, nil, err
	}
	return s, env, nil
}

// render loads and renders the environment of dir at the branch. With
// placeholders, secrets with no value render as placeholders (for delete,
// which only needs the names); otherwise they come from --secrets-from.
func (o *envOptions) render(ctx context.Context, stderr io.Writer, s *session, dir string, placeholders bool) (*render.Environment, error) {
	params, err := keyValues("--param", o.params)
	if err != nil {
		return nil, fail(exitUsage, err)
	}
	tree, err := openRepo(dir)
	if err != nil {
		return nil, fail(exitUsage, err)
	}
	defer tree.Close()
	cfg, err := loadDir(stderr, tree, dir, o.file, schema.LoadOptions{Parameters: params, MaxFileSize: o.maxConfig}, exitUsage)
	if err != nil {
		return nil, err
	}
	secrets, err := o.readSecrets(ctx, s)
	if err != nil {
		return nil, fail(exitUsage, err)
	}
	in := render.Input{
		Config: cfg,
		Tree:   tree,
		Context: render.Context{
			App: o.appName(cfg, dir), Branch: o.branch, Commit: o.commit, EnvironmentTemplate: o.template,
			Domain: o.domain, Parameters: params, Secrets: secrets, SecretPlaceholders: placeholders,
			AllowClusterScoped: o.allowCS, Kustomize: o.kustomize,
			// Remote charts are the daemon's to fetch: left out, with a warning.
			Charts: render.ChartOptions{SkipRemote: true},
		},
	}
	dirs, err := keyValues("--import", o.imports)
	if err != nil {
		return nil, fail(exitUsage, err)
	}
	if in.Imports, err = loadImports(stderr, cfg, dirs, o.branch, o.commit, o.maxConfig, exitUsage); err != nil {
		return nil, err
	}
	env, err := render.Render(in)
	if err != nil {
		return nil, fail(exitUsage, err)
	}
	for _, w := range env.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	return env, nil
}

// readSecrets reads the Secret named by --secrets-from; its values are never printed.
func (o *envOptions) readSecrets(ctx context.Context, s *session) (map[string]string, error) {
	if o.secretsFrom == "" {
		return nil, nil
	}
	ns, name, ok := strings.Cut(o.secretsFrom, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("--secrets-from %q: want NAMESPACE/NAME", o.secretsFrom)
	}
	values, _, err := environment.Secrets(ctx, s.cs, ns, name)
	if err != nil {
		return nil, fmt.Errorf("--secrets-from: %w", err)
	}
	return values, nil
}

// appName is --app, else the template's app, else the directory's name as a DNS label.
func (o *envOptions) appName(cfg *schema.Config, dir string) string {
	if o.app != "" {
		return o.app
	}
	if cfg.Template.App != "" {
		return cfg.Template.App
	}
	return appName(dir)
}

// readState reads the environment's record; a missing record is an empty one.
func readState(ctx context.Context, cs kubernetes.Interface, ns string) (*state.State, error) {
	st, err := state.Read(ctx, cs, ns)
	if errors.Is(err, state.ErrNotFound) {
		return &state.State{}, nil
	}
	return st, err
}

// readOwnState reads the record of an environment this command may write:
// one that no arbor daemon manages. A daemon's environment is its own (it
// would undo the change, and a write here would drop its part of the record).
func readOwnState(ctx context.Context, cs kubernetes.Interface, ns string) (*state.State, error) {
	st, err := readState(ctx, cs, ns)
	if err != nil {
		return nil, err
	}
	if install := st.ManagedBy(); install != "" {
		return nil, fmt.Errorf("namespace %s: the environment is managed by the arbor install %q: push to its branch, or ask that daemon (arbor deploy)", ns, install)
	}
	return st, nil
}

// printChanges writes one line per change that is not "unchanged", then a count of each action.
func printChanges(w io.Writer, prefix string, sets ...*apply.ChangeSet) {
	all := &apply.ChangeSet{}
	for _, cs := range sets {
		if cs != nil {
			all.Changes = append(all.Changes, cs.Changes...)
		}
	}
	for _, c := range all.Changes {
		if c.Action == "" || c.Action == apply.Unchanged {
			continue
		}
		line := fmt.Sprintf("%s %s", c.Ref, c.Action)
		if len(c.Fields) > 0 {
			line += " (" + strings.Join(c.Fields, ", ") + ")"
		}
		if c.Reason != "" {
			line += ": " + c.Reason
		}
		fmt.Fprintln(w, schema.SafeText(line))
	}
	var counts []string
	for _, a := range []apply.Action{apply.Created, apply.Configured, apply.Recreated, apply.Deleted, apply.Unchanged, apply.Skipped, apply.Failed} {
		if n := all.Count(a); n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, a))
		}
	}
	if len(counts) == 0 {
		counts = []string{"nothing to do"}
	}
	fmt.Fprintf(w, "%s: %s\n", prefix, strings.Join(counts, ", "))
}

func dirArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return "."
}
