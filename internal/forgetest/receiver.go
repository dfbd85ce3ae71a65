package forgetest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Delivery is one webhook request as the receiver got it.
type Delivery struct {
	Event  string      // X-Gitea-Event, e.g. "push", "pull_request"
	Header http.Header // every header, for the signatures
	Body   []byte
}

// Receiver is a loopback HTTP server that records the webhooks the forge delivers.
type Receiver struct {
	URL string

	mu      sync.Mutex
	pending []Delivery    // received, not yet returned by Next
	arrived chan struct{} // signalled (without blocking) on each delivery
}

// Bounds on what a Receiver keeps; Gitea's payloads for test repositories are far smaller.
const (
	maxDelivery = 1 << 20
	maxPending  = 1000
)

// NewReceiver starts a Receiver that answers 200 to every POST; it stops when the test ends.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{arrived: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(io.LimitReader(req.Body, maxDelivery))
		if err != nil || req.Method != http.MethodPost {
			http.Error(w, "bad delivery", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		if len(r.pending) < maxPending {
			r.pending = append(r.pending, Delivery{Event: req.Header.Get("X-Gitea-Event"), Header: req.Header.Clone(), Body: body})
		}
		r.mu.Unlock()
		select {
		case r.arrived <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Next returns the oldest delivery of event for which match is true (nil matches
// all), waiting for it up to wait, and fails t when none arrives. Deliveries that
// do not match stay for later calls: Gitea does not promise an order.
func (r *Receiver) Next(t testing.TB, event string, wait time.Duration, match func(Delivery) bool) Delivery {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		if d, ok := r.take(event, match); ok {
			return d
		}
		select {
		case <-r.arrived:
		case <-deadline.C:
			t.Fatalf("no matching %q webhook delivery within %s", event, wait)
			return Delivery{}
		}
	}
}

func (r *Receiver) take(event string, match func(Delivery) bool) (Delivery, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, d := range r.pending {
		if d.Event == event && (match == nil || match(d)) {
			r.pending = append(r.pending[:i], r.pending[i+1:]...)
			return d, true
		}
	}
	return Delivery{}, false
}
