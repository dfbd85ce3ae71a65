// Package traffic reads how many requests each environment has had, from
// the request counters an ingress controller exports in the Prometheus
// text format, so that idle pausing counts from the last request and not
// only from the last push. It finds the controller's endpoints (ready
// endpoints of its metrics Service, or fixed URLs), scrapes each with a
// bound on time and size, keeps only the counter it was told of, and sums
// its series by environment namespace. It reads; it writes nothing.
package traffic

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/arbordev/arbor/internal/redact"
)

// Counter names the request counter to read: its metric name, the label
// that names an environment's namespace, and whether that label is the
// namespace itself or starts with "NAMESPACE-" (Traefik's service names).
type Counter struct {
	Metric string
	Label  string
	Prefix bool
}

// Counts are a reading's requests by namespace (its series summed).
type Counts map[string]float64

// maxLine bounds one line of the exposition text.
const maxLine = 64 << 10

// ErrTooLarge: a response larger than the scraper's bound.
var ErrTooLarge = errors.New("metrics response larger than the bound")

// Read parses exposition text and returns c's series summed by namespace,
// among namespaces (the environments' namespaces; for a prefix counter the
// longest namespace a value starts with wins). Lines of other metrics are
// skipped before parsing, so memory follows the counter's own series.
func Read(in io.Reader, c Counter, namespaces []string) (Counts, error) {
	text, err := filter(in, c.Metric)
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", c.Metric, err)
	}
	out := Counts{}
	fam, ok := fams[c.Metric]
	if !ok {
		return out, nil // no requests yet: the controller exports the counter from its first
	}
	match := matcher(c, namespaces)
	for _, m := range fam.GetMetric() {
		ns := match(labelValue(m, c.Label))
		if ns == "" {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			out[ns] += m.GetCounter().GetValue()
		case m.GetUntyped() != nil:
			out[ns] += m.GetUntyped().GetValue()
		}
	}
	return out, nil
}

// filter keeps the lines of metric (its samples and its HELP and TYPE
// comments), refusing a line longer than maxLine.
func filter(in io.Reader, metric string) ([]byte, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), maxLine)
	var out bytes.Buffer
	for sc.Scan() {
		line := sc.Bytes()
		if keep(line, metric) {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line of the metrics is longer than %d bytes", maxLine)
		}
		return nil, err
	}
	return out.Bytes(), nil
}

// keep reports whether line is a sample, HELP or TYPE line of metric.
func keep(line []byte, metric string) bool {
	s := string(line)
	if rest, ok := strings.CutPrefix(s, "# "); ok {
		_, rest, _ = strings.Cut(rest, " ") // HELP or TYPE
		name, _, _ := strings.Cut(rest, " ")
		return (strings.HasPrefix(s, "# HELP ") || strings.HasPrefix(s, "# TYPE ")) && name == metric
	}
	rest, ok := strings.CutPrefix(s, metric)
	return ok && rest != "" && (rest[0] == '{' || rest[0] == ' ' || rest[0] == '\t')
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// matcher maps a label value to one of namespaces, or "".
func matcher(c Counter, namespaces []string) func(string) string {
	known := make(map[string]bool, len(namespaces))
	for _, ns := range namespaces {
		known[ns] = true
	}
	if !c.Prefix {
		return func(v string) string {
			if known[v] {
				return v
			}
			return ""
		}
	}
	// Longest first: "shop-main-x" belongs to "shop-main" before "shop".
	byLen := append([]string(nil), namespaces...)
	sort.Slice(byLen, func(i, j int) bool { return len(byLen[i]) > len(byLen[j]) })
	return func(v string) string {
		for _, ns := range byLen {
			if strings.HasPrefix(v, ns+"-") {
				return ns
			}
		}
		return ""
	}
}

// Scraper fetches metrics, each response bounded in time and size.
type Scraper struct {
	Client   *http.Client
	Timeout  time.Duration
	MaxBytes int64
}

// Scrape reads c from the metrics at url. Its errors name url without
// userinfo: a configured URL may carry a login.
func (s Scraper) Scrape(ctx context.Context, url string, c Counter, namespaces []string) (Counts, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	shown := redact.URL(url)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", shown, redact.Error(err, url))
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", shown, redact.Error(err, url))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", shown, resp.Status)
	}
	body := &io.LimitedReader{R: resp.Body, N: s.MaxBytes + 1} // one byte more tells a body over the bound
	counts, err := Read(body, c, namespaces)
	if body.N == 0 {
		return nil, fmt.Errorf("scrape %s: %w (%d bytes)", shown, ErrTooLarge, s.MaxBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", shown, err)
	}
	return counts, nil
}
