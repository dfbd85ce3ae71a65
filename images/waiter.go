package images

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// Defaults of WaiterOptions.
const (
	DefaultWaitTimeout = 30 * time.Minute
	DefaultMinPoll     = 2 * time.Second
	DefaultMaxPoll     = 30 * time.Second
	// NotificationMediaType is the distribution registry's notification
	// envelope (registry 2.x); NotificationMediaTypeV2 is the same envelope
	// as distribution 3.x labels it.
	NotificationMediaType   = "application/vnd.docker.distribution.events.v1+json"
	NotificationMediaTypeV2 = "application/vnd.docker.distribution.events.v2+json"
	// MaxNotificationSize bounds one notification body.
	MaxNotificationSize = 1 << 20
	// maxNotificationEvents bounds the events of one envelope arbor looks at.
	maxNotificationEvents = 1000
)

// WaiterOptions configure a Waiter; they come from the daemon config's images
// section.
type WaiterOptions struct {
	// Credentials are the pull credentials the environment's pods use (the
	// docker-config Secret), so arbor sees what the pods will see.
	Credentials *Credentials
	// PlainHTTP makes lookups speak HTTP to the registry.
	PlainHTTP bool
	// Timeout ends a wait (default DefaultWaitTimeout).
	Timeout time.Duration
	// MinPoll and MaxPoll bound the polling backoff between lookups
	// (defaults DefaultMinPoll, DefaultMaxPoll): it starts at MinPoll and
	// doubles up to MaxPoll. A notification looks again at once.
	MinPoll, MaxPoll time.Duration
	// NotificationToken is the bearer token the registry sends with its
	// notifications (its endpoint's Authorization header). Without one the
	// notification handler accepts nothing and waits rely on polling.
	NotificationToken string
	// OnPush, when set, is given the repositories of every notification
	// accepted (each once, manifest pushes only) after this Waiter has
	// woken its own waits: a daemon with several replicas passes them on
	// to the others, whose waits this one does not hold.
	OnPush func(repositories []string)
}

// Waiter waits for images that someone else (CI) builds and pushes. It is
// safe for concurrent use: many environments may wait at once.
type Waiter struct {
	opts WaiterOptions
	reg  registry

	mu      sync.Mutex
	waiting map[string]map[chan struct{}]struct{} // repository path → wake channels
}

// NewWaiter returns a Waiter with the options' defaults filled in.
func NewWaiter(opts WaiterOptions) *Waiter {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultWaitTimeout
	}
	if opts.MinPoll <= 0 {
		opts.MinPoll = DefaultMinPoll
	}
	if opts.MaxPoll < opts.MinPoll {
		opts.MaxPoll = max(DefaultMaxPoll, opts.MinPoll)
	}
	return &Waiter{
		opts:    opts,
		reg:     registry{creds: opts.Credentials, plainHTTP: opts.PlainHTTP},
		waiting: map[string]map[chan struct{}]struct{}{},
	}
}

// WaitTimeoutError is a wait that reached its deadline: the image never
// appeared. Callers mark the environment Failed with it.
type WaitTimeoutError struct {
	Ref     string
	Timeout time.Duration
	Last    error // the last lookup's error, when the registry answered with one
}

func (e *WaitTimeoutError) Error() string {
	msg := fmt.Sprintf("image %s did not appear in the registry within %s (images: wait_timeout)", e.Ref, e.Timeout)
	if e.Last != nil {
		msg += "; last lookup: " + e.Last.Error()
	}
	return msg
}

func (e *WaitTimeoutError) Unwrap() error { return e.Last }

// Wait returns the image ref (a tag, typically the commit's) pinned by digest
// once the registry has it: at once when it does, else after a registry
// notification or a poll finds it. It ends with a *WaitTimeoutError at the
// deadline, or with ctx's error.
func (w *Waiter) Wait(ctx context.Context, ref string) (Result, error) {
	r, err := w.reg.parse(ref)
	if err != nil {
		return Result{}, fmt.Errorf("image %s: %w", ref, err)
	}
	wake := w.register(r.Context().RepositoryStr())
	defer w.unregister(r.Context().RepositoryStr(), wake)

	// The deadline also ends a lookup in flight: a registry that takes the
	// request and never answers must not hold the wait past it.
	wctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	deadline := time.NewTimer(w.opts.Timeout)
	defer deadline.Stop()
	poll := time.NewTimer(0)
	defer poll.Stop()
	next := w.opts.MinPoll // the pause after the next lookup the timer makes
	var last error
	for {
		polled := false
		select {
		case <-ctx.Done():
			return Result{}, fmt.Errorf("wait for image %s: %w", ref, ctx.Err())
		case <-deadline.C:
			return Result{}, &WaitTimeoutError{Ref: ref, Timeout: w.opts.Timeout, Last: last}
		case <-wake:
		case <-poll.C:
			polled = true
		}
		d, found, err := w.lookup(wctx, r)
		if found {
			return Result{Ref: pinned(r, d), Tag: ref, Digest: d}, nil
		}
		if ctx.Err() == nil && wctx.Err() != nil {
			return Result{}, &WaitTimeoutError{Ref: ref, Timeout: w.opts.Timeout, Last: err}
		}
		last = err
		if polled {
			// Back off only on the timer's own lookups: a notification for
			// another tag of the repository leaves the schedule as it was.
			poll.Reset(next)
			next = min(next*2, w.opts.MaxPoll)
		}
	}
}

// maxLookup bounds one registry lookup of a wait: one that hangs leaves the
// next poll or notification to look again.
const maxLookup = 30 * time.Second

func (w *Waiter) lookup(ctx context.Context, r name.Reference) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, maxLookup)
	defer cancel()
	return w.reg.digest(ctx, r)
}

func (w *Waiter) register(repo string) chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting[repo] == nil {
		w.waiting[repo] = map[chan struct{}]struct{}{}
	}
	w.waiting[repo][ch] = struct{}{}
	return ch
}

func (w *Waiter) unregister(repo string, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.waiting[repo], ch)
	if len(w.waiting[repo]) == 0 {
		delete(w.waiting, repo)
	}
}

// Wake makes every wait for an image in repository (a path in the registry,
// "shop/web") look again now. It reports how many waits it woke.
func (w *Waiter) Wake(repository string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for ch := range w.waiting[repository] {
		select {
		case ch <- struct{}{}:
		default: // already woken, not yet looked
		}
		n++
	}
	return n
}

// notification is the part of the distribution registry's notification
// envelope arbor reads.
type notification struct {
	Events []struct {
		Action string `json:"action"`
		Target struct {
			MediaType  string `json:"mediaType"`
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"target"`
	} `json:"events"`
}

// NotificationHandler receives the registry's notifications (mount it at
// /hooks/registry): each manifest push wakes the waits for its repository.
// It accepts only POSTs of a notification media type, at most
// MaxNotificationSize bytes, carrying "Authorization: Bearer TOKEN" with the
// configured token; a notification only ever makes arbor look again. Every
// well-formed envelope is answered 200, the events arbor ignores too: the
// registry retries an endpoint's first unaccepted event without end, and
// holds back the ones after it meanwhile.
func (w *Waiter) NotificationHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !w.authorized(r) {
			http.Error(rw, "unauthorized", http.StatusUnauthorized)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != NotificationMediaType && mt != NotificationMediaTypeV2) {
			http.Error(rw, "want "+NotificationMediaType+" or "+NotificationMediaTypeV2, http.StatusUnsupportedMediaType)
			return
		}
		var env notification
		if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, MaxNotificationSize)).Decode(&env); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(rw, fmt.Sprintf("notification larger than %d bytes", MaxNotificationSize), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(rw, "not a notification envelope", http.StatusBadRequest)
			return
		}
		woken := 0
		var pushed []string
		for i, ev := range env.Events {
			if i == maxNotificationEvents {
				break
			}
			if ev.Action == "push" && ev.Target.Repository != "" && isManifest(ev.Target.MediaType, ev.Target.Tag) {
				woken += w.Wake(ev.Target.Repository)
				if !slices.Contains(pushed, ev.Target.Repository) {
					pushed = append(pushed, ev.Target.Repository)
				}
			}
		}
		if w.opts.OnPush != nil && len(pushed) > 0 {
			w.opts.OnPush(pushed)
		}
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, "{\"woken\":%d}\n", woken)
	})
}

// isManifest tells a manifest push (what makes an image pullable) from the
// blob pushes before it.
func isManifest(mediaType, tag string) bool {
	return tag != "" || strings.Contains(mediaType, "manifest") || strings.Contains(mediaType, "image.index")
}

func (w *Waiter) authorized(r *http.Request) bool {
	if w.opts.NotificationToken == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(w.opts.NotificationToken)) == 1
}
