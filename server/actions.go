package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/arbordev/arbor/internal/httpjson"
)

// ErrInvalid is what an action returns (wrapped) for a request it cannot
// honour as asked, e.g. an extension beyond the app's maximum: 400.
var ErrInvalid = errors.New("invalid request")

// ErrConflict is what an action returns (wrapped) when the environment's
// state does not allow it, e.g. extending one that never expires: 409.
var ErrConflict = errors.New("conflict")

// The verbs of arbor's actions, each checked with a SubjectAccessReview on
// apiGroup arbor.dev, resource environments, name APP/ENV.
const (
	VerbDeploy = "deploy"
	VerbPause  = "pause"
	VerbResume = "resume"
	VerbExtend = "extend"
	VerbDelete = "delete"
	VerbLogs   = "logs"
)

// Bounds of the logs endpoint.
const (
	DefaultLogTail  = 200
	MaxLogTail      = 10000
	DefaultLogBytes = 1 << 20
	MaxLogBytes     = 8 << 20
	// MaxFollow is how long a followed log stream lasts at most; the client
	// asks again for more.
	MaxFollow = 30 * time.Minute
	// maxActionBody bounds an action's JSON body.
	maxActionBody = 4 << 10
)

// The kinds of logs.
const (
	LogService  = "service"  // a service's pods
	LogJob      = "job"      // a job's pods
	LogWorkflow = "workflow" // the last workflow run, as the executor recorded it
	LogBuild    = "build"    // the last image builds
)

// LogQuery is what a logs request asks for.
type LogQuery struct {
	Kind      string // LogService, LogJob, LogWorkflow or LogBuild
	Name      string // the service or job, for LogService and LogJob
	Container string // optional: one container of the pods
	// Tail is how many of the last lines each container sends; LimitBytes
	// bounds the whole answer (the server cuts it there too).
	Tail       int64
	LimitBytes int64
	Follow     bool
}

// ExtendRequest is the body of POST .../extend.
type ExtendRequest struct {
	// Duration is how long from now the environment lives: a Go duration
	// ("36h", "90m") or whole days ("3d").
	Duration string `json:"duration"`
}

// actions mounts the environment actions besides deploy.
func (r Routes) actions(mux *http.ServeMux) {
	const env = "/api/v1/apps/{app}/environments/{env}"
	mux.Handle("POST "+env+"/pause", r.guard(VerbPause, r.pause(true)))
	mux.Handle("POST "+env+"/resume", r.guard(VerbResume, r.pause(false)))
	mux.Handle("POST "+env+"/extend", r.guard(VerbExtend, http.HandlerFunc(r.extend)))
	mux.Handle("DELETE "+env, r.guard(VerbDelete, http.HandlerFunc(r.delete)))
	for p, kind := range map[string]string{
		"/logs/services/{name}": LogService, "/logs/jobs/{name}": LogJob, "/logs/workflow": LogWorkflow, "/logs/build": LogBuild,
	} {
		mux.Handle("GET "+env+p, r.guard(VerbLogs, r.logs(kind)))
	}
}

func (r Routes) pause(paused bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.Pause == nil {
			notAvailable(w, "pausing")
			return
		}
		v, err := r.Pause(req.Context(), req.PathValue("app"), req.PathValue("env"), paused)
		answer(w, http.StatusAccepted, v, err)
	})
}

func (r Routes) extend(w http.ResponseWriter, req *http.Request) {
	if r.Extend == nil {
		notAvailable(w, "extending")
		return
	}
	var body ExtendRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxActionBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		answer(w, 0, nil, fmt.Errorf("%w: the body must be {\"duration\": \"48h\"}: %w", ErrInvalid, err))
		return
	}
	d, err := ParseDuration(body.Duration)
	if err != nil {
		answer(w, 0, nil, fmt.Errorf("%w: duration: %w", ErrInvalid, err))
		return
	}
	v, err := r.Extend(req.Context(), req.PathValue("app"), req.PathValue("env"), d)
	answer(w, http.StatusAccepted, v, err)
}

// ParseDuration reads a positive Go duration or a whole number of days ("3d").
func ParseDuration(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok && n != "" {
		days, err := strconv.Atoi(n)
		if err != nil || days > 3650 {
			return 0, fmt.Errorf("%q: use a duration such as 36h or 3d", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: use a duration such as 36h or 3d", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not positive", s)
	}
	return d, nil
}

func (r Routes) delete(w http.ResponseWriter, req *http.Request) {
	if r.Delete == nil {
		notAvailable(w, "deleting")
		return
	}
	v, err := r.Delete(req.Context(), req.PathValue("app"), req.PathValue("env"))
	answer(w, http.StatusAccepted, v, err)
}

// logs serves a logs request as text. The status is sent with the first
// byte, so an error before it (no such service, no build logs) is a JSON
// error with its status; an error after it ends the stream.
func (r Routes) logs(kind string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.Logs == nil {
			notAvailable(w, "logs")
			return
		}
		q, err := logQuery(req, kind)
		if err != nil {
			answer(w, 0, nil, err)
			return
		}
		ctx := req.Context()
		if q.Follow {
			// The server's write timeout would cut a followed stream; it
			// is bounded by MaxFollow instead.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(MaxFollow))
			var cancel func()
			ctx, cancel = context.WithTimeout(ctx, MaxFollow)
			defer cancel()
		}
		out := &logWriter{w: w, left: q.LimitBytes, flush: q.Follow}
		err = r.Logs(ctx, req.PathValue("app"), req.PathValue("env"), q, out)
		if err != nil && !errors.Is(err, errLogLimit) && !out.started {
			answer(w, 0, nil, err)
		}
	})
}

func logQuery(req *http.Request, kind string) (LogQuery, error) {
	q := LogQuery{Kind: kind, Name: req.PathValue("name"), Tail: DefaultLogTail, LimitBytes: DefaultLogBytes}
	v := req.URL.Query()
	q.Container = v.Get("container")
	for _, f := range []struct {
		key      string
		dst      *int64
		min, max int64
	}{{"tail", &q.Tail, 1, MaxLogTail}, {"limitBytes", &q.LimitBytes, 1, MaxLogBytes}} {
		s := v.Get(f.key)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < f.min || n > f.max {
			return q, fmt.Errorf("%w: %s=%q: a whole number from %d to %d", ErrInvalid, f.key, s, f.min, f.max)
		}
		*f.dst = n
	}
	if s := v.Get("follow"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return q, fmt.Errorf("%w: follow=%q: true or false", ErrInvalid, s)
		}
		q.Follow = b
	}
	return q, nil
}

// errLogLimit ends a log copy at the answer's byte limit.
var errLogLimit = errors.New("log byte limit reached")

// logWriter sends logs as text/plain, at most left bytes, flushing each
// write of a followed stream.
type logWriter struct {
	w       http.ResponseWriter
	left    int64
	flush   bool
	started bool
}

func (l *logWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		h := l.w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		l.w.WriteHeader(http.StatusOK)
	}
	if l.left <= 0 {
		return 0, errLogLimit
	}
	cut := false
	if int64(len(p)) > l.left {
		p, cut = p[:l.left], true
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	if l.flush {
		_ = http.NewResponseController(l.w).Flush()
	}
	if err == nil && cut {
		err = errLogLimit
	}
	return n, err
}

// answer writes an action's result: v with ok, or err's status.
func answer(w http.ResponseWriter, ok int, v any, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		httpjson.Write(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrInvalid):
		httpjson.Write(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrConflict):
		httpjson.Write(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case err != nil:
		httpjson.Write(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		httpjson.Write(w, ok, v)
	}
}

func notAvailable(w http.ResponseWriter, what string) {
	httpjson.Write(w, http.StatusNotImplemented, map[string]string{"error": what + " is not available in this daemon"})
}
