package apply

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// RequestCounter counts the requests that pass through a client-go transport,
// by verb, with dry-run requests counted apart ("PATCH dry-run"). Install it
// with cfg.Wrap(counter.Wrap) before building clients from cfg.
type RequestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Wrap returns rt with counting in front; it has the signature rest.Config.Wrap expects.
func (c *RequestCounter) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		c.add(requestKey(req))
		return rt.RoundTrip(req)
	})
}

// requestKey is the verb of req, with " dry-run" added for dry-run requests
// and " watch" for watches.
func requestKey(req *http.Request) string {
	key := req.Method
	q := req.URL.Query()
	switch {
	case q.Get("dryRun") != "":
		key += " dry-run"
	case q.Get("watch") == "true" || q.Get("watch") == "1":
		key += " watch"
	}
	return key
}

func (c *RequestCounter) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[key]++
}

// Counts returns a copy of the counts so far.
func (c *RequestCounter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Writes returns the number of requests that could change the cluster:
// POST, PUT, PATCH and DELETE that were not dry-runs.
func (c *RequestCounter) Writes() int {
	n := 0
	for k, v := range c.Counts() {
		switch k {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			n += v
		}
	}
	return n
}

// Reset sets every count back to zero.
func (c *RequestCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = nil
}

// String renders the counts as "GET=3 PATCH dry-run=2".
func (c *RequestCounter) String() string {
	counts := c.Counts()
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.Itoa(counts[k]))
	}
	return strings.Join(parts, " ")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
