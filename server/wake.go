package server

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
)

// WakeState is what the waking endpoint knows of a request's host.
type WakeState int

// The states of a host at the waking endpoint.
const (
	// WakeUnknown: no paused environment serves the host; nothing wakes.
	WakeUnknown WakeState = iota
	// WakeWaking: the host's environment is paused or resuming; a wake
	// request is recorded.
	WakeWaking
	// WakeAwake: the environment has resumed; the request came before the
	// ingress controller saw its Ingress point back.
	WakeAwake
)

// WakeRefresh is how often the waking page reloads itself, in seconds.
const WakeRefresh = 3

// Wake handles a request for host at the waking endpoint; the daemon's
// reconciler decides what the host is and records the wake request.
type Wake func(ctx context.Context, host string) (WakeState, error)

// WakeHandler is the waking endpoint, served on a listener of its own
// (server.wake_listen): the Ingresses of paused environments lead there,
// every path of their hosts included, so it serves nothing but this page —
// never the status page, the API, metrics or webhooks of the main listener.
// A GET or HEAD for a paused environment's host (matched exactly, by the
// reconciler) wakes it and answers 503 with a small page that reloads
// itself until the environment answers instead; any other host gets 404
// and wakes nothing.
func WakeHandler(wake Wake, opts Options) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the environment is paused: open it in a browser to wake it", http.StatusMethodNotAllowed)
			return
		}
		state, err := wake(req.Context(), req.Host)
		if err != nil {
			log.Warn("wake request failed", "host", req.Host, "error", err)
		}
		w.Header().Set("Cache-Control", "no-store")
		if state == WakeUnknown {
			http.Error(w, "no paused environment serves this host", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Retry-After", strconv.Itoa(WakeRefresh))
		w.WriteHeader(http.StatusServiceUnavailable)
		if req.Method == http.MethodHead {
			return
		}
		_ = wakePage.Execute(w, struct {
			Refresh int
			Awake   bool
			Failed  bool
		}{WakeRefresh, state == WakeAwake, err != nil})
	})
}

var wakePage = template.Must(template.New("wake").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{{.Refresh}}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Awake}}Ready{{else}}Waking up{{end}}</title>
<style>body{font-family:system-ui,sans-serif;margin:20vh auto;max-width:32em;text-align:center;color:#333}</style>
</head><body>
{{if .Awake}}<h1>Ready</h1><p>The environment is running again; this page reloads into it.</p>
{{else}}<h1>Waking up…</h1><p>This preview environment was paused. It is starting now; this page reloads every {{.Refresh}} seconds until it is ready.</p>
{{if .Failed}}<p>The wake request could not be recorded yet; reloading tries again.</p>{{end}}{{end}}
</body></html>
`))
