package testcluster

import (
	"net/http/httputil"
	"net/url"
	"testing"

	"k8s.io/client-go/rest"
)

// Proxy is a reverse proxy to the test cluster's API server that carries
// the cluster's credentials and streams watches: a test serves it on
// loopback (counting, delaying or cutting requests) and points a client
// at it without credentials of its own.
func Proxy(t testing.TB) *httputil.ReverseProxy {
	t.Helper()
	cfg := Config(t)
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = rt
	rp.FlushInterval = -1 // watches stream
	return rp
}
