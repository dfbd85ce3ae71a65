package server

import (
	"bytes"
	_ "embed"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/arbordev/arbor/internal/redact"
)

//go:embed page.html.tmpl
var pageSource string

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"short":      shortCommit,
	"phaseClass": phaseClass,
	"redact":     redact.URL,
	"percent":    percent,
	"hostOf":     hostOf,
}).Parse(pageSource))

// Options tune the page.
type Options struct {
	// Refresh is how often the page reloads itself; 0 means 10 seconds.
	Refresh time.Duration
	// Now gives the current time (tests fix it); nil means time.Now.
	Now func() time.Time
	// Logger receives errors from the Source; nil means slog.Default().
	Logger *slog.Logger
}

// Handler serves the status page at the path it is mounted on, for GET and HEAD.
func Handler(src Source, opts Options) http.Handler {
	if opts.Refresh <= 0 {
		opts.Refresh = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &handler{src: src, opts: opts}
}

type handler struct {
	src  Source
	opts Options
}

// view is what the template renders.
type view struct {
	Snapshot
	Err            string
	RefreshSeconds int
	Generated      string
	Counts         []phaseCount
	Rows           map[int][]row // by app index
}

type phaseCount struct {
	Phase string
	N     int
}

// row is an environment with its times already formatted against one "now".
type row struct {
	Environment
	Since   string // time in the current phase
	Age     string
	Expires string
	Expired bool
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	now := h.opts.Now()
	v := view{RefreshSeconds: int(h.opts.Refresh.Round(time.Second) / time.Second), Generated: now.UTC().Format(time.RFC3339)}
	status := http.StatusOK
	snap, err := h.src.Snapshot(r.Context())
	if err != nil {
		h.opts.Logger.Error("status page: reading status", "err", err)
		v.Err = err.Error()
		status = http.StatusServiceUnavailable
	} else {
		v.Snapshot = snap
		v.Rows, v.Counts = rows(snap, now)
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		h.opts.Logger.Error("status page: rendering", "err", err)
		http.Error(w, "status page: rendering failed", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	// The page loads nothing: no scripts, styles only inline, images only data:.
	hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		_, _ = w.Write(buf.Bytes())
	}
}

// rows formats every environment against now and counts environments by phase.
func rows(s Snapshot, now time.Time) (map[int][]row, []phaseCount) {
	out := make(map[int][]row, len(s.Apps))
	counts := map[string]int{}
	var order []string
	for i, app := range s.Apps {
		for _, env := range app.Environments {
			r := row{Environment: env, Age: "–", Expires: "never"}
			if !env.Created.IsZero() {
				r.Age = humanDuration(now.Sub(env.Created))
			}
			if !env.Updated.IsZero() {
				r.Since = humanDuration(now.Sub(env.Updated))
			}
			if env.ExpiresAt.IsZero() && env.ExpiresAfter != "" {
				r.Expires = env.ExpiresAfter + " after the last push"
			}
			if !env.ExpiresAt.IsZero() {
				if d := env.ExpiresAt.Sub(now); d > 0 {
					r.Expires = "in " + humanDuration(d)
				} else {
					r.Expires, r.Expired = "expired", true
				}
			}
			out[i] = append(out[i], r)
			p := env.Phase
			if p == "" {
				p = "Unknown"
			}
			if counts[p] == 0 {
				order = append(order, p)
			}
			counts[p]++
		}
	}
	pc := make([]phaseCount, 0, len(order))
	for _, p := range order {
		pc = append(pc, phaseCount{Phase: p, N: counts[p]})
	}
	return out, pc
}

// humanDuration renders d with its two largest units: 3d 4h, 2h 5m, 40s.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Second)
	days := int(d / (24 * time.Hour))
	hours := int(d/time.Hour) % 24
	mins := int(d/time.Minute) % 60
	secs := int(d/time.Second) % 60
	switch {
	case days > 0:
		return joinUnits(days, "d", hours, "h")
	case hours > 0:
		return joinUnits(hours, "h", mins, "m")
	case mins > 0:
		return joinUnits(mins, "m", secs, "s")
	default:
		return itoa(secs) + "s"
	}
}

func joinUnits(a int, ua string, b int, ub string) string {
	if b == 0 {
		return itoa(a) + ua
	}
	return itoa(a) + ua + " " + itoa(b) + ub
}

func itoa(n int) string { return strconv.Itoa(n) }

func shortCommit(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// phaseClass maps a phase to a colour class; unknown phases are neutral.
func phaseClass(phase string) string {
	switch strings.ToLower(phase) {
	case "ready", "deployed", "succeeded", "healthy":
		return "ok"
	case "progressing", "deploying", "applying", "pending", "creating", "updating", "waiting":
		return "busy"
	case "failed", "error", "degraded", "invalid", "conflict":
		return "bad"
	case "deleting", "tearingdown", "terminating", "expired", "deleted", "paused":
		return "gone"
	default:
		return "unknown"
	}
}

func percent(done, total int) int {
	if total <= 0 {
		return 0
	}
	if done >= total {
		return 100
	}
	return done * 100 / total
}

// hostOf shows a URL by its host (and path, if any), the part a reader scans for.
func hostOf(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return redact.URL(s)
	}
	return u.Host + strings.TrimSuffix(u.EscapedPath(), "/")
}
