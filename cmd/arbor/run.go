package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/server"
)

type runFlags struct {
	cluster   clusterFlags
	config    string
	logFormat string
	logLevel  string
	cacheDir  string
	identity  string
	apiAddr   string
	pprof     bool
	qps       float32
	burst     int
	lease     reconciler.LeaseTiming
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the daemon: an environment for every branch of the configured repositories",
		Long: `run follows the repositories named in the daemon configuration: every branch with a
valid .release.yaml gets an environment, updated on every push and deleted when the
branch goes. It serves /metrics, /healthz, /readyz, the status API (/api/v1/...) and the
webhook receivers (/hooks/...) on server.listen. Every replica holds a Lease in arbor's
namespace, and the live replicas split the apps among themselves (docs/clusters.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := runDaemon(cmd.Context(), &f, cmd.ErrOrStderr())
			var ec *exitError
			if err != nil && !errors.As(err, &ec) {
				err = fail(exitNo, err) // operational, not usage: exit 1
			}
			return err
		},
	}
	f.cluster.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "the daemon configuration file (required)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "where remote repositories are cached (default: the user cache directory, /arbor/git)")
	fl.StringVar(&f.identity, "identity", "", "this replica's name, and its Lease's (default: hostname and a random suffix)")
	fl.Float32Var(&f.qps, "kube-api-qps", 200, "requests per second each of arbor's Kubernetes clients may send (the apply engine, the records and the watches each have one)")
	fl.IntVar(&f.burst, "kube-api-burst", 400, "requests each client may send at once above --kube-api-qps")
	fl.StringVar(&f.apiAddr, "api-address", "", "host:port where the other replicas reach this one's API, published on its Lease so that they forward requests for its apps (default: $POD_IP with server.listen's port; else server.listen when it names a host)")
	fl.BoolVar(&f.pprof, "pprof", false, "also serve Go's runtime profiles at /debug/pprof/ on server.listen (for diagnosing memory and CPU; keep the port private)")
	fl.DurationVar(&f.lease.LeaseDuration, "lease-duration", 15*time.Second, "how long a replica's claim on its apps stands after its last renewal was seen (whole seconds)")
	fl.DurationVar(&f.lease.RenewDeadline, "lease-renew-deadline", 10*time.Second, "how long a replica goes on acting without renewing its Lease (less than --lease-duration)")
	fl.DurationVar(&f.lease.RetryPeriod, "lease-retry-period", 2*time.Second, "how often a replica renews its Lease and rebalances the apps")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", format)
	}
}

func runDaemon(ctx context.Context, f *runFlags, stderr io.Writer) error {
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return fail(exitUsage, err)
	}
	if f.qps <= 0 || f.burst <= 0 {
		return fail(exitUsage, fmt.Errorf("--kube-api-qps %v, --kube-api-burst %d: both must be positive", f.qps, f.burst))
	}
	if f.apiAddr != "" {
		if _, _, err := net.SplitHostPort(f.apiAddr); err != nil {
			return fail(exitUsage, fmt.Errorf("--api-address %q: want host:port: %w", f.apiAddr, err))
		}
	}
	klog.SetSlogLogger(log) // client-go's own logs (leader election, watches) in the same format
	tuneGC(log)
	cfg, err := config.Load(f.config)
	if err != nil {
		return fail(exitUsage, err)
	}
	restCfg, err := daemonRESTConfig(f.cluster, cfg.Clusters[config.DefaultCluster])
	if err != nil {
		return fail(exitUsage, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := reconciler.NewMetrics(reg)
	if err != nil {
		return err
	}
	// The lease has a client of its own, left out of arbor_api_requests_total:
	// its renewals are constant background, not work.
	leaseCS, err := kubernetes.NewForConfig(rest.CopyConfig(restCfg))
	if err != nil {
		return err
	}
	restCfg.Wrap(metrics.WrapTransport)
	restCfg.QPS, restCfg.Burst = f.qps, f.burst
	cacheDir, err := gitCacheDir(f.cacheDir)
	if err != nil {
		return fail(exitUsage, err)
	}
	parts, err := reconciler.Wire(ctx, reconciler.WireOptions{
		Config: cfg, REST: restCfg, Registry: reg, Metrics: metrics, CacheDir: cacheDir, Log: log,
	})
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	meta, err := metadata.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	parts.Options.Kube, parts.Options.Metadata = cs, meta
	members, err := otherClusters(ctx, cfg, parts, cs, f, metrics)
	if err != nil {
		return err
	}
	rec, err := reconciler.NewFleet(append([]reconciler.Options{parts.Options}, members...))
	if err != nil {
		return err
	}
	id := f.identity
	if id == "" {
		id = identity()
	}
	routes := daemonRoutes(rec, reg, parts.Hooks, id)
	envRoutes(rec, &routes)
	routes.Guard = (&server.Authorizer{Kube: cs, Namespace: cfg.Namespace}).Require
	routes.OpenReads = cfg.Server.AnonymousRead
	routes.Profiles = f.pprof
	srv, err := server.Serve(cfg.Server.Listen, rec.Forward(server.New(routes, server.Options{Logger: log})), log)
	if err != nil {
		return fail(exitUsage, err)
	}
	defer server.Shutdown(ctx, srv, log)
	if cfg.Server.Waking() {
		// its own listener: the Ingresses of paused environments lead
		// there, and must reach nothing else of arbor's (docs/pausing.md)
		wsrv, err := server.Serve(cfg.Server.WakeListen, server.WakeHandler(wakeOf(rec), server.Options{Logger: log}), log)
		if err != nil {
			return fail(exitUsage, fmt.Errorf("server.wake_listen: %w", errors.Unwrap(err)))
		}
		defer server.Shutdown(ctx, wsrv, log)
	}

	log.Info("arbor starting", "version", version, "apps", len(cfg.Apps), "listen", srv.Addr, "namespace", cfg.Namespace)
	if err := rec.Start(ctx); err != nil {
		return err
	}
	err = rec.RunSharded(ctx, reconciler.ShardOptions{
		Kube: leaseCS, Namespace: cfg.Namespace, Install: cfg.Install, Identity: id, Timing: f.lease, Log: log,
		APIAddress: apiAddress(f.apiAddr, os.Getenv("POD_IP"), srv.Addr),
	})
	if err != nil {
		return fail(exitUsage, err)
	}
	log.Info("arbor stopped")
	return nil
}

// otherClusters are the Options of every configured cluster but the default
// one, each with clients of its own (so its own rate limit), counted in
// arbor_api_requests_total.
func otherClusters(ctx context.Context, cfg *config.Config, parts *reconciler.Parts, home kubernetes.Interface, f *runFlags, m *reconciler.Metrics) ([]reconciler.Options, error) {
	var out []reconciler.Options
	for _, name := range slices.Sorted(maps.Keys(cfg.Clusters)) {
		if name == config.DefaultCluster {
			continue
		}
		rc, err := reconciler.ClusterREST(ctx, home, cfg.Namespace, cfg.Clusters[name])
		if err != nil {
			return nil, fail(exitUsage, fmt.Errorf("clusters.%s: %w", name, err))
		}
		rc.Wrap(m.WrapTransport)
		rc.QPS, rc.Burst = f.qps, f.burst
		o, err := parts.ForCluster(name, rc)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// daemonRESTConfig picks the cluster: --kubeconfig/--context, else the
// config's cluster entry, else in-cluster when in a pod, else KUBECONFIG and
// ~/.kube/config as kubectl does.
func daemonRESTConfig(flags clusterFlags, cl config.Cluster) (*rest.Config, error) {
	path, ctxName := flags.kubeconfig, flags.context
	if path == "" {
		path = cl.Kubeconfig
	}
	if ctxName == "" {
		ctxName = cl.Context
	}
	if path == "" && ctxName == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		if c, err := rest.InClusterConfig(); err == nil {
			return c, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: ctxName}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes configuration: %w", err)
	}
	return c, nil
}

func gitCacheDir(dir string) (string, error) {
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "arbor", "git")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("--cache-dir: %w", err)
	}
	return dir, nil
}

func identity() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return strings.Trim(host+"-"+hex.EncodeToString(b), "-")
}

// apiAddress is where the peers reach this replica's API: the flag, else
// the pod's IP with the listening port, else the listening address when it
// names a host ("" when it listens on every interface: not forwarded to).
func apiAddress(flag, podIP, listening string) string {
	if flag != "" {
		return flag
	}
	host, port, err := net.SplitHostPort(listening)
	if err != nil {
		return ""
	}
	if podIP != "" {
		return net.JoinHostPort(podIP, port)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return ""
	}
	return listening
}
