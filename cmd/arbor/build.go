package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/arbordev/arbor/gitsource"
	"github.com/arbordev/arbor/images"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// buildOptions are the flags of arbor build.
type buildOptions struct {
	branch      string
	app         string
	file        string
	addr        string
	registry    string
	plainHTTP   bool
	allowed     []string
	dockerCfg   string
	timeout     time.Duration
	maxContext  int64
	concurrency int
	maxConfig   int64
}

func newBuildCmd() *cobra.Command {
	o := &buildOptions{}
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build and push the images of a branch's services with BuildKit",
		Long: `build builds the image of every service of one branch that is built from the
repository (build:, has_repo: true), from the branch's commit in the git
repository DIR (default: the current directory), with a BuildKit daemon, and
pushes each under REGISTRY/APP/SERVICE, tagged by the content of its build
inputs. It builds exactly what the daemon in build mode builds, under the same
tags, so an image built here (in CI, or on a laptop) is found by the daemon
and not built again; an image already in the registry is not built again here
either. It prints each image pinned by digest.

The same bounds as the daemon's apply (docs/images.md): base images only from
--allowed-base-registry, no network for RUN steps, no URL sources.`,
		Example: `  arbor build --branch feature/login --buildkit-addr tcp://buildkitd:1234 --registry registry.example.com/previews
  arbor build . --branch main --app shop --registry 127.0.0.1:5000/previews --plain-http`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), dir)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.branch, "branch", "", "the branch whose images to build (required)")
	f.StringVar(&o.app, "app", "", "the app's name, as the daemon config names it (default: the template's app:, else the directory's name)")
	f.StringVar(&o.file, "file", schema.DefaultConfigFile, "path of .release.yaml in the repository")
	f.StringVar(&o.addr, "buildkit-addr", os.Getenv("BUILDKIT_HOST"), "the BuildKit daemon: unix:///path or tcp://host:port (default: $BUILDKIT_HOST)")
	f.StringVar(&o.registry, "registry", "", "the repository prefix images are pushed under, as the daemon config's images.registry (required)")
	f.BoolVar(&o.plainHTTP, "plain-http", false, "speak HTTP, not HTTPS, to the registry")
	f.StringArrayVar(&o.allowed, "allowed-base-registry", nil, "a registry host or repository prefix FROM may name (repeatable; default: only scratch and earlier stages)")
	f.StringVar(&o.dockerCfg, "registry-config", "", "a docker config.json with the registry's login (its auths; default: anonymous)")
	f.DurationVar(&o.timeout, "timeout", images.DefaultBuildTimeout, "how long one build, push included, may take")
	f.Int64Var(&o.maxContext, "max-context-size", images.DefaultMaxContextSize, "the largest build context sent for one image, in bytes")
	f.IntVar(&o.concurrency, "max-concurrent-builds", images.DefaultMaxConcurrent, "builds run at once")
	registerMaxConfig(cmd, &o.maxConfig)
	_ = cmd.MarkFlagRequired("branch")
	_ = cmd.MarkFlagRequired("registry")
	return cmd
}

func (o *buildOptions) run(ctx context.Context, stdout, stderr io.Writer, dir string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.addr == "" {
		return fail(exitUsage, errors.New("--buildkit-addr (or $BUILDKIT_HOST) is required"))
	}
	work, err := os.MkdirTemp("", "arbor-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	builder, err := o.builder(work)
	if err != nil {
		return fail(exitUsage, err)
	}
	defer builder.Close()
	src, commit, err := openBranch(ctx, dir, o.branch)
	if err != nil {
		return fail(exitUsage, err)
	}
	tree, err := src.Tree(ctx, commit)
	if err != nil {
		return fail(exitUsage, err)
	}
	cfg, err := loadDir(stderr, tree, dir, o.file, schema.LoadOptions{MaxFileSize: o.maxConfig}, exitUsage)
	if err != nil {
		return err
	}
	app := o.app
	if app == "" {
		app = orDefault(cfg.Template.App, appName(dir))
	}
	builds, err := render.Builds(render.Input{Config: cfg, Tree: tree, Context: render.Context{
		App: app, AppFixed: true, Branch: o.branch, Commit: commit, Image: render.ImageSettings{Registry: o.registry},
	}})
	if err != nil {
		return fail(exitUsage, err)
	}
	if len(builds) == 0 {
		fmt.Fprintf(stderr, "%s@%s: no service is built from the repository\n", app, o.branch)
		return nil
	}
	return buildAll(ctx, stdout, builder, src, tree, commit, app, builds)
}

// buildAll builds each image in turn (BuildKit runs each build's steps in
// parallel) and prints a table; the first failure ends it with the failing
// step and its log.
func buildAll(ctx context.Context, stdout io.Writer, b *images.Builder, src *gitsource.Source, tree fs.FS, commit, app string, builds []render.ImageBuild) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tBUILT\tIMAGE")
	defer tw.Flush()
	for _, bd := range builds {
		if bd.App != app {
			continue // an imported app's images come from its own repository
		}
		key, err := src.TreeHash(ctx, commit, bd.Build.Context)
		if err != nil {
			return fail(exitNo, fmt.Errorf("services.%s.build.context %s: %w", bd.Service, bd.Build.Context, err))
		}
		res, err := b.Build(ctx, images.Request{
			Repository: bd.App + "/" + schema.ObjectName(bd.Service),
			Source:     tree, Context: bd.Build.Context, ContextKey: key,
			Dockerfile: bd.Build.Dockerfile, Args: bd.Build.Args, Target: bd.Build.Target,
		})
		if err != nil {
			tw.Flush()
			return fail(exitNo, fmt.Errorf("services.%s: %w", bd.Service, err))
		}
		built := "no (found)"
		if res.Built {
			built = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", bd.Service, built, res.Ref)
	}
	return nil
}

// builder is a Builder with the flags' settings; work holds the contexts
// while they are sent.
func (o *buildOptions) builder(work string) (*images.Builder, error) {
	var creds *images.Credentials
	if o.dockerCfg != "" {
		data, err := os.ReadFile(o.dockerCfg)
		if err != nil {
			return nil, fmt.Errorf("--registry-config: %w", err)
		}
		if creds, err = images.ParseDockerConfig(data); err != nil {
			return nil, fmt.Errorf("--registry-config %s: %w", o.dockerCfg, err)
		}
	}
	return images.NewBuilder(images.BuilderOptions{
		Addr: o.addr, Registry: o.registry, PlainHTTP: o.plainHTTP, AllowedBaseRegistries: o.allowed,
		Credentials: creds, Timeout: o.timeout, MaxContextSize: o.maxContext, MaxConcurrent: o.concurrency,
		WorkDir: work,
	})
}

// openBranch opens the git repository in dir in place and returns its
// branch's commit: the tree the daemon would build from, and its tree hashes.
func openBranch(ctx context.Context, dir, branch string) (*gitsource.Source, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", err
	}
	src, err := gitsource.Open(gitsource.Options{App: "build", Repo: abs})
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", dir, err)
	}
	branches, _, err := src.ListBranches(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", dir, err)
	}
	commit, ok := branches[branch]
	if !ok {
		return nil, "", fmt.Errorf("%s: no branch %q", dir, branch)
	}
	return src, commit, nil
}

func orDefault(s, d string) string {
	if s != "" {
		return s
	}
	return d
}
