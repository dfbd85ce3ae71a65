package apply

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Verb names a request to the API server the way arbor counts it: get, watch,
// create, update, patch, apply (server-side apply), delete, each with a
// "-dryrun" suffix for dry runs. The daemon's arbor_api_requests_total and
// RequestCounter both count by it.
func Verb(req *http.Request) string {
	q := req.URL.Query()
	var v string
	switch req.Method {
	case http.MethodGet:
		v = "get"
		if q.Get("watch") == "true" || q.Get("watch") == "1" {
			v = "watch"
		}
	case http.MethodPost:
		v = "create"
	case http.MethodPut:
		v = "update"
	case http.MethodPatch:
		v = "patch"
		if strings.HasPrefix(req.Header.Get("Content-Type"), "application/apply-patch") {
			v = "apply"
		}
	case http.MethodDelete:
		v = "delete"
	default:
		v = strings.ToLower(req.Method)
	}
	if q.Get("dryRun") != "" {
		v += "-dryrun"
	}
	return v
}

// writeVerbs are the verbs that can change the cluster.
var writeVerbs = map[string]bool{"create": true, "update": true, "patch": true, "apply": true, "delete": true}

// CountRequests returns rt with count called with the Verb of every request
// before it is sent. Install it with cfg.Wrap before building clients from
// cfg: it is the one request counter, whatever the counts feed (a Prometheus
// counter in the daemon, a RequestCounter in tests and benchmarks).
func CountRequests(rt http.RoundTripper, count func(verb string)) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		count(Verb(req))
		return rt.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// RequestCounter keeps CountRequests' counts in memory, for tests and
// benchmarks. Install it with cfg.Wrap(counter.Wrap).
type RequestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Wrap returns rt with counting in front; it has the signature rest.Config.Wrap expects.
func (c *RequestCounter) Wrap(rt http.RoundTripper) http.RoundTripper {
	return CountRequests(rt, c.add)
}

func (c *RequestCounter) add(verb string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[verb]++
}

// Counts returns a copy of the counts so far, by Verb.
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
// creates, updates, patches, applies and deletes that were not dry runs.
func (c *RequestCounter) Writes() int {
	n := 0
	for k, v := range c.Counts() {
		if writeVerbs[k] {
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

// String renders the counts as "apply-dryrun=2 get=3".
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
