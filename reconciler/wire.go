package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/chartsource"
	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/forge"
	"github.com/arbordev/arbor/gitsource"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/workflow"
)

// WireOptions are what Wire needs to assemble the daemon's parts.
type WireOptions struct {
	Config   *config.Config
	REST     *rest.Config // already wrapped to count requests
	Registry prometheus.Registerer
	Metrics  *Metrics
	CacheDir string // bare caches of remote repositories
	Log      *slog.Logger
	// WaitTimeout bounds each environment's readiness wait (5 minutes when zero).
	WaitTimeout time.Duration
}

// Parts are the assembled pieces: Options for New (Kube and Metadata still
// to be set by the caller) and the webhook receiver to mount at /hooks/.
type Parts struct {
	Options Options
	Hooks   http.Handler
	// workflowMetrics are shared by every cluster's executor (ForCluster).
	workflowMetrics *workflow.Metrics
}

// Wire opens every app's repository (watching local ones), the webhook
// receiver, the apply engine, the loader and the renderer.
func Wire(ctx context.Context, o WireOptions) (*Parts, error) {
	gm := gitsource.NewMetrics()
	if err := gm.Register(o.Registry); err != nil {
		return nil, err
	}
	sources := map[string]Source{}
	var all []*gitsource.Source
	for _, a := range o.Config.Apps {
		s, err := gitsource.Open(gitsource.Options{
			App: a.Name, Repo: a.Repo, CacheDir: o.CacheDir, Depth: 1, Metrics: gm, Logger: o.Log,
			Timeout: a.GitTimeout.Duration, MaxFetchSize: a.GitMaxFetchSize.Bytes,
			Auth: gitsource.Auth{
				UsernameFile: a.Auth.UsernameFile, PasswordFile: a.Auth.PasswordFile, TokenFile: a.Auth.TokenFile,
				SSHKeyFile: a.Auth.SSHKeyFile, SSHPassphraseFile: a.Auth.SSHPassphraseFile, KnownHostsFile: a.Auth.KnownHostsFile,
			},
		})
		if err != nil {
			return nil, err
		}
		if err := s.Watch(ctx); err != nil {
			return nil, err
		}
		sources[a.Name] = s
		all = append(all, s)
	}
	hooks, err := webhooks(o, gm)
	if err != nil {
		return nil, err
	}
	forges, err := forgeClients(o.Config.Apps)
	if err != nil {
		return nil, err
	}
	hooks.SetSources(all)
	eng, err := newEngine(o.Config, o.REST)
	if err != nil {
		return nil, err
	}
	wait := o.WaitTimeout
	if wait == 0 {
		wait = 5 * time.Minute
	}
	wm, err := workflow.NewMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	imgs, registryHook, err := wireImages(ctx, o)
	if err != nil {
		return nil, err
	}
	return &Parts{
		Options: Options{
			Config: o.Config, Sources: sources, Forges: forges, Metrics: o.Metrics, Log: o.Log,
			Charts: &chartsource.Fetcher{Dir: filepath.Join(o.CacheDir, "charts"), PlainHTTPHosts: o.Config.ChartPlainHTTPHosts},
			Load:   loadConfig,
			Render: render.Render,
			Engine: eng, WaitTimeout: wait,
			Workflows: &workflow.Executor{Engine: eng, RolloutTimeout: wait, Metrics: wm},
			images:    imgs,
		},
		Hooks:           hooksWith(hooks, registryHook),
		workflowMetrics: wm,
	}, nil
}

// newEngine is the daemon's apply engine on one cluster.
func newEngine(c *config.Config, restCfg *rest.Config) (*apply.Engine, error) {
	return apply.New(restCfg, apply.Options{
		Concurrency: apply.DefaultConcurrency,
		// The daemon owns its environments: a field taken by hand is taken back.
		Force:               true,
		AllowClusterScoped:  c.AllowClusterScoped,
		ProtectedNamespaces: []string{c.Namespace},
	})
}

// ForCluster returns Options for the Reconciler of the configured cluster
// name, reached through restCfg (already wrapped to count requests): an
// engine, a workflow executor and clients of its own, so its own client
// rate limit; the rest is shared with p.Options. Home is left to NewFleet.
func (p *Parts) ForCluster(name string, restCfg *rest.Config) (Options, error) {
	o := p.Options
	eng, err := newEngine(o.Config, restCfg)
	if err != nil {
		return Options{}, fmt.Errorf("cluster %s: %w", name, err)
	}
	o.Engine, o.Cluster = eng, name
	o.Workflows = &workflow.Executor{Engine: eng, RolloutTimeout: o.WaitTimeout, Metrics: p.workflowMetrics}
	if o.Kube, err = kubernetes.NewForConfig(restCfg); err != nil {
		return Options{}, fmt.Errorf("cluster %s: %w", name, err)
	}
	if o.Metadata, err = metadata.NewForConfig(restCfg); err != nil {
		return Options{}, fmt.Errorf("cluster %s: %w", name, err)
	}
	return o, nil
}

func webhooks(o WireOptions, gm *gitsource.Metrics) (*gitsource.Webhooks, error) {
	opts := gitsource.WebhookOptions{Metrics: gm, Logger: o.Log, ProviderSecrets: map[string][]byte{}}
	read := func(path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("webhook secret: %w", err)
		}
		return []byte(strings.TrimSpace(string(b))), nil
	}
	var err error
	if f := o.Config.Server.WebhookSecretFile; f != "" {
		if opts.Secret, err = read(f); err != nil {
			return nil, err
		}
	}
	for p, f := range o.Config.Server.WebhookSecretFiles {
		if opts.ProviderSecrets[p], err = read(f); err != nil {
			return nil, err
		}
	}
	return gitsource.NewWebhooks(opts), nil
}

func loadConfig(fsys fs.FS, path string, opts schema.LoadOptions) (*schema.Config, schema.Findings, error) {
	cfg, findings, err := schema.Load(fsys, path, opts)
	if errors.Is(err, schema.ErrNoConfig) {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoConfig, err)
	}
	return cfg, findings, err
}

// loadOptions are how an app's .release.yaml is read: its parameters, and the
// largest configuration file it may have (0: schema's default).
func loadOptions(a config.App) schema.LoadOptions {
	return schema.LoadOptions{Parameters: a.Parameters, MaxFileSize: a.MaxConfigSize.Bytes}
}

// forgeClients opens the forge of every app that has one; its token is
// read from its file here, and never logged.
func forgeClients(apps []config.App) (map[string]forge.Forge, error) {
	out := map[string]forge.Forge{}
	for _, a := range apps {
		if !a.Forge.Enabled() {
			continue
		}
		token, err := forge.ReadTokenFile(a.Forge.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", a.Name, err)
		}
		f, err := forge.New(forge.Options{Type: forge.Type(a.Forge.Type), URL: a.Forge.URL, Repo: a.Forge.Repo, Token: token, App: a.Name})
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", a.Name, err)
		}
		out[a.Name] = f
	}
	return out, nil
}
