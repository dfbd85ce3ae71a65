package reconciler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"
)

// The status API and the actions reach whichever replica the Service
// picks; only the owner of an app knows all of it (its listing, a deploy
// in progress) and runs its logs requests close to its work. A replica
// that receives a request for an app it does not act on passes it to the
// owner, at the address the owner publishes on its Lease
// (APIAddressAnnotation), with the caller's Authorization header: the owner
// authenticates and authorizes it as if it had come straight. A request
// is passed on once at most (ForwardedHeader), and when the owner is not
// known or does not answer, the replica answers from the records itself,
// saying so in OwnerUnreachableHeader.

// ForwardedHeader marks a request passed on by a replica (its identity):
// the replica receiving it answers it, never passes it on again.
const ForwardedHeader = "X-Arbor-Forwarded-By"

// ServedByHeader, on an answer under /api/v1/apps/{app}/, names the
// replica that answered.
const ServedByHeader = "X-Arbor-Served-By"

// OwnerUnreachableHeader, on an answer, says that the app's owner could not
// be asked and why: the answer is this replica's, from the records.
const OwnerUnreachableHeader = "X-Arbor-Owner-Unreachable"

// maxForwardedBody bounds the body of a request passed on (the actions'
// bodies are a few bytes); it is held to answer locally if the owner fails.
const maxForwardedBody = 64 << 10

// forwardTimeout bounds connecting to the owner and waiting for its answer
// to begin (a logs stream may then run longer).
const forwardTimeout = 10 * time.Second

// Forward wraps the daemon's handler h: the requests under
// /api/v1/apps/{app}/ for an app another replica acts on go to that
// replica; everything else is served by h.
func (f *Fleet) Forward(h http.Handler) http.Handler {
	dialer := &net.Dialer{Timeout: forwardTimeout}
	tr := &http.Transport{DialContext: dialer.DialContext, ResponseHeaderTimeout: forwardTimeout, MaxIdleConnsPerHost: 4}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		app := appOfPath(req.URL.Path)
		s := f.shard.Load()
		if app == "" || s == nil {
			h.ServeHTTP(w, req)
			return
		}
		if req.Header.Get(ForwardedHeader) != "" || f.home.apps[app] == nil || f.home.acts(app) {
			w.Header().Set(ServedByHeader, s.o.Identity)
			h.ServeHTTP(w, req)
			return
		}
		owner := s.owner(app)
		addr := s.apiAddress(owner)
		if owner == "" || owner == s.o.Identity || addr == "" {
			w.Header().Set(OwnerUnreachableHeader, fmt.Sprintf("the owner of app %s (%q) publishes no API address", app, owner))
			w.Header().Set(ServedByHeader, s.o.Identity)
			h.ServeHTTP(w, req)
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, maxForwardedBody+1))
		if err != nil || len(body) > maxForwardedBody {
			http.Error(w, fmt.Sprintf("request body unreadable or larger than %d bytes", maxForwardedBody), http.StatusRequestEntityTooLarge)
			return
		}
		local := func(w http.ResponseWriter, why error) {
			w.Header().Set(OwnerUnreachableHeader, fmt.Sprintf("owner %s at %s: %v", owner, addr, why))
			w.Header().Set(ServedByHeader, s.o.Identity)
			req.Body = io.NopCloser(bytes.NewReader(body))
			h.ServeHTTP(w, req)
		}
		rp := &httputil.ReverseProxy{
			Transport: tr,
			Rewrite: func(pr *httputil.ProxyRequest) {
				// The Host the caller used stays: the owner's guard
				// compares a browser's Origin with it.
				pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = "http", addr, pr.In.Host
				pr.Out.Header.Set(ForwardedHeader, s.o.Identity)
				pr.SetXForwarded()
			},
			FlushInterval: -1, // logs stream
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				if !safeToRepeat(req.Method, err) {
					// The owner may have recorded the action before it
					// failed: doing it here too could do it twice.
					s.o.Log.Warn("the app's owner failed during an action passed to it", "app", app, "owner", owner, "error", err)
					http.Error(w, fmt.Sprintf("the owner of app %s (%s) failed while handling the request (%v): it may or may not have been done; look at the environment's status before trying again", app, owner, err), http.StatusBadGateway)
					return
				}
				s.o.Log.Warn("could not pass a request to the app's owner; answering from the records", "app", app, "owner", owner, "error", err)
				local(w, err)
			},
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		rp.ServeHTTP(w, req)
	})
}

// safeToRepeat: a request the replica may answer itself after passing it
// to the owner failed with err: a read, or anything the owner never
// received (the connection could not be made).
func safeToRepeat(method string, err error) bool {
	if method == http.MethodGet || method == http.MethodHead {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// appOfPath is the {app} of /api/v1/apps/{app}/..., "" for other paths.
func appOfPath(p string) string {
	rest, ok := strings.CutPrefix(p, "/api/v1/apps/")
	if !ok {
		return ""
	}
	app, _, _ := strings.Cut(rest, "/")
	return app
}

// apiAddress is the API address the live replica id publishes ("" unknown).
func (s *shards) apiAddress(id string) string {
	m := s.addrs.Load()
	if m == nil {
		return ""
	}
	return (*m)[id]
}
