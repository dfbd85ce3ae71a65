package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/arbordev/arbor/internal/httpjson"
)

// ErrNotFound is what Routes.Deploy returns (wrapped) for an app or
// environment that does not exist: the action answers 404.
var ErrNotFound = errors.New("not found")

// Routes are the daemon's parts the server exposes. The server owns the
// paths, methods, status codes and the authorization of actions; the daemon
// owns the values, which are served as JSON as they are.
type Routes struct {
	// Page is the status page, at GET /.
	Page Source
	// Apps is GET /api/v1/apps.
	Apps func() any
	// Environments is GET /api/v1/apps/{app}/environments; ok is false when
	// there is no such app (404).
	Environments func(app string) (v any, ok bool)
	// Ready is GET /readyz; /healthz always answers.
	Ready func() bool
	// Metrics is GET /metrics.
	Metrics http.Handler
	// Hooks receives the webhooks, under /hooks/.
	Hooks http.Handler
	// Deploy records a deploy request for an environment (its env id or
	// branch): POST /api/v1/apps/{app}/environments/{env}/deploy answers
	// 202 with what it returns, 404 for ErrNotFound.
	Deploy func(ctx context.Context, app, env string) (any, error)
	// Environment is GET /api/v1/apps/{app}/environments/{env} (env id or
	// branch); ErrNotFound answers 404.
	Environment func(app, env string) (any, error)
	// Pause pauses (paused true) or resumes an environment: POST
	// .../{env}/pause and .../{env}/resume answer 202 with what it returns.
	Pause func(ctx context.Context, app, env string, paused bool) (any, error)
	// Extend records a later expiry, by from now: POST .../{env}/extend
	// with {"duration": "48h"} answers 202.
	Extend func(ctx context.Context, app, env string, by time.Duration) (any, error)
	// Delete deletes an environment: DELETE .../environments/{env} answers 202.
	Delete func(ctx context.Context, app, env string) (any, error)
	// Logs writes the logs q asks for to w: GET .../{env}/logs/... (see
	// actions.go). The server bounds what reaches the client.
	Logs func(ctx context.Context, app, env string, q LogQuery, w io.Writer) error
	// Guard authorizes an action (a verb of arbor's on an environment);
	// Authorizer.Require is one. Without a Guard every action is refused:
	// actions are never open.
	Guard func(verb string, h http.Handler) http.Handler
	// OpenReads serves the status page and the read-only API to anyone
	// (the daemon config's server.anonymous_read). Otherwise they pass
	// Guard too, with the verbs list (get for one environment).
	OpenReads bool
	// Profiles serves net/http/pprof at /debug/pprof/.
	Profiles bool
}

// New is the daemon's one HTTP handler: the status page, the status API,
// health, metrics, webhooks and actions.
func New(r Routes, opts Options) http.Handler {
	mux := http.NewServeMux()
	if r.Page != nil {
		mux.Handle("GET /{$}", r.read("list", Handler(r.Page, opts)))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if r.Ready != nil && !r.Ready() {
			http.Error(w, "not ready: cache syncing or first listing pending", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if r.Metrics != nil {
		mux.Handle("GET /metrics", r.Metrics)
	}
	r.status(mux)
	mux.Handle("POST /api/v1/apps/{app}/environments/{env}/deploy", r.guard(VerbDeploy, http.HandlerFunc(r.deploy)))
	r.actions(mux)
	if r.Hooks != nil {
		mux.Handle("/hooks/", r.Hooks)
	}
	if r.Profiles {
		profiles(mux)
	}
	return mux
}

// status mounts the read-only JSON API.
func (r Routes) status(mux *http.ServeMux) {
	if r.Apps != nil {
		mux.Handle("GET /api/v1/apps", r.read("list", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			httpjson.Write(w, http.StatusOK, r.Apps())
		})))
	}
	if r.Environments != nil {
		mux.Handle("GET /api/v1/apps/{app}/environments", r.read("list", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			app := req.PathValue("app")
			v, ok := r.Environments(app)
			if !ok {
				httpjson.Write(w, http.StatusNotFound, map[string]string{"error": "no app named " + app})
				return
			}
			httpjson.Write(w, http.StatusOK, v)
		})))
	}
	if r.Environment != nil {
		mux.Handle("GET /api/v1/apps/{app}/environments/{env}", r.read("get", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			v, err := r.Environment(req.PathValue("app"), req.PathValue("env"))
			answer(w, http.StatusOK, v, err)
		})))
	}
}

// read guards a read-only endpoint with verb unless reads are open.
func (r Routes) read(verb string, h http.Handler) http.Handler {
	if r.OpenReads {
		return h
	}
	return r.guard(verb, h)
}

// deploy serves a deploy request.
func (r Routes) deploy(w http.ResponseWriter, req *http.Request) {
	if r.Deploy == nil {
		http.NotFound(w, req)
		return
	}
	v, err := r.Deploy(req.Context(), req.PathValue("app"), req.PathValue("env"))
	answer(w, http.StatusAccepted, v, err)
}

// guard puts an action behind Routes.Guard, refusing it when there is none.
func (r Routes) guard(verb string, h http.Handler) http.Handler {
	if r.Guard != nil {
		return r.Guard(verb, h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="arbor"`)
		httpjson.Write(w, http.StatusUnauthorized, map[string]string{"error": "actions are disabled: the daemon has no authenticator"})
	})
}

// profiles mounts net/http/pprof's handlers at /debug/pprof/.
func profiles(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// Serve listens on addr at once (so a bad address is an error now) and
// serves h in the background until Shutdown.
func Serve(addr string, h http.Handler, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server.listen: %w", err)
	}
	// Timeouts keep a slow or idle client from holding a connection forever;
	// the status page and API answer in milliseconds.
	srv := &http.Server{
		Addr: ln.Addr().String(), Handler: h,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "error", err)
		}
	}()
	return srv, nil
}

// Shutdown stops srv, giving in-flight requests a few seconds (ctx is
// usually done already).
func Shutdown(ctx context.Context, srv *http.Server, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("http server shutdown", "error", err)
	}
}
