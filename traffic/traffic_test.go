package traffic_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/arbordev/arbor/traffic"
)

var (
	nginx   = traffic.Counter{Metric: "nginx_ingress_controller_requests", Label: "namespace"}
	traefik = traffic.Counter{Metric: "traefik_service_requests_total", Label: "service", Prefix: true}
)

// controller serves metrics the way an ingress controller exports them,
// produced by client_golang: the request counter, by its labels, among
// other metrics.
type controller struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	other    *prometheus.CounterVec
}

func newController(t *testing.T, c traffic.Counter, labels ...string) *controller {
	reg := prometheus.NewRegistry()
	ctl := &controller{reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: c.Metric, Help: "requests"}, labels),
		other:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: c.Metric + "_bytes", Help: "not the counter"}, labels),
	}
	reg.MustRegister(ctl.requests, ctl.other)
	return ctl
}

func (c *controller) text(t *testing.T) string {
	srv := httptest.NewServer(promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}

func TestReadIngressNginx(t *testing.T) {
	ctl := newController(t, nginx, "namespace", "ingress", "status")
	ctl.requests.WithLabelValues("shop-main", "web", "200").Add(3)
	ctl.requests.WithLabelValues("shop-main", "api", "502").Add(2)
	ctl.requests.WithLabelValues("shop-feature", "web", "200").Add(1)
	ctl.requests.WithLabelValues("kube-system", "dash", "200").Add(9) // not an environment
	ctl.other.WithLabelValues("shop-feature", "web", "200").Add(1000)
	got, err := traffic.Read(strings.NewReader(ctl.text(t)), nginx, []string{"shop-main", "shop-feature", "shop-idle"})
	if err != nil {
		t.Fatal(err)
	}
	want := traffic.Counts{"shop-main": 5, "shop-feature": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", got, want)
	}
}

// Traefik names a service NAMESPACE-NAME-PORT@kubernetes: the longest
// environment namespace the name starts with wins.
func TestReadTraefikLongestNamespace(t *testing.T) {
	ctl := newController(t, traefik, "service", "code")
	ctl.requests.WithLabelValues("shop-main-web-80@kubernetes", "200").Add(4)
	ctl.requests.WithLabelValues("shop-main-x-web-80@kubernetes", "200").Add(7)
	ctl.requests.WithLabelValues("shopping-web-80@kubernetes", "200").Add(5) // starts with "shop" but not "shop-"
	got, err := traffic.Read(strings.NewReader(ctl.text(t)), traefik, []string{"shop", "shop-main", "shop-main-x"})
	if err != nil {
		t.Fatal(err)
	}
	want := traffic.Counts{"shop-main": 4, "shop-main-x": 7}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", got, want)
	}
}

func TestReadNoCounterYet(t *testing.T) {
	got, err := traffic.Read(strings.NewReader("# TYPE up gauge\nup 1\n"), nginx, []string{"a"})
	if err != nil || len(got) != 0 {
		t.Errorf("a controller without requests yet: %v, %v", got, err)
	}
}

func TestReadBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"garbage value": "nginx_ingress_controller_requests{namespace=\"a\"} twelve\n",
		"open labels":   "nginx_ingress_controller_requests{namespace=\"a\" 1\n",
		"long line":     "nginx_ingress_controller_requests{namespace=\"" + strings.Repeat("a", 70<<10) + "\"} 1\n",
	} {
		if _, err := traffic.Read(strings.NewReader(in), nginx, []string{"a"}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add("# TYPE nginx_ingress_controller_requests counter\nnginx_ingress_controller_requests{namespace=\"a\"} 1\n")
	f.Add("traefik_service_requests_total{service=\"a-b-80@kubernetes\"} 3\n")
	f.Add("nginx_ingress_controller_requests 1e400\n")
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = traffic.Read(strings.NewReader(in), nginx, []string{"a", "a-b"})
		_, _ = traffic.Read(strings.NewReader(in), traefik, []string{"a", "a-b"})
	})
}

func TestScrapeBounds(t *testing.T) {
	ctl := newController(t, nginx, "namespace")
	ctl.requests.WithLabelValues("a").Add(2)
	good := httptest.NewServer(promhttp.HandlerFor(ctl.reg, promhttp.HandlerOpts{}))
	defer good.Close()
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := []byte("# padding that never ends, no counter here at all\n")
		for r.Context().Err() == nil {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}))
	defer endless.Close()
	hang := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer silent.Close()
	defer close(hang)
	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer refused.Close()

	s := traffic.Scraper{Timeout: time.Second, MaxBytes: 1 << 20}
	ctx := context.Background()
	got, err := s.Scrape(ctx, good.URL, nginx, []string{"a"})
	if err != nil || got["a"] != 2 {
		t.Fatalf("good: %v, %v", got, err)
	}
	if _, err := s.Scrape(ctx, endless.URL, nginx, []string{"a"}); !errors.Is(err, traffic.ErrTooLarge) {
		t.Errorf("endless body: %v, want ErrTooLarge", err)
	}
	if _, err := s.Scrape(ctx, silent.URL, nginx, []string{"a"}); err == nil || !strings.Contains(err.Error(), silent.URL) {
		t.Errorf("a server that never answers: %v, want a timeout naming it", err)
	}
	if _, err := s.Scrape(ctx, refused.URL, nginx, []string{"a"}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("403: %v", err)
	}
}

// TestScrapeErrorHidesLogin: a scrape's error names the URL without the
// login a configured URL may carry, on a refusal and on a failed request.
func TestScrapeErrorHidesLogin(t *testing.T) {
	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer refused.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	s := traffic.Scraper{Timeout: 5 * time.Second, MaxBytes: 1 << 20}
	for _, srv := range []string{refused.URL, closed.URL} {
		withLogin := strings.Replace(srv, "http://", "http://scraper:s3cret-pw@", 1)
		_, err := s.Scrape(context.Background(), withLogin, nginx, []string{"a"})
		if err == nil || strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), strings.TrimPrefix(srv, "http://")) {
			t.Errorf("scrape %s: %v, want an error naming the host and not the password", srv, err)
		}
	}
}
