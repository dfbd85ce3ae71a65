package chartsource

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	chartloader "helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"

	chartcommon "helm.sh/helm/v4/pkg/chart/common"

	"github.com/arbordev/arbor/schema"
)

// packageChart packages a one-ConfigMap chart with the Helm SDK into dir
// and returns the archive's path.
func packageChart(t *testing.T, dir, name, version string) string {
	t.Helper()
	c := &chartv2.Chart{
		Metadata: &chartv2.Metadata{APIVersion: chartv2.APIVersionV2, Name: name, Version: version},
		Templates: []*chartcommon.File{{Name: "templates/cm.yaml",
			Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\ndata: {version: \"" + version + "\"}\n")}},
	}
	file, err := chartutil.Save(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// chartRepo serves an HTTP chart repository: charts packaged and indexed by
// the Helm SDK, on loopback. It counts the requests per path.
type chartRepo struct {
	dir  string
	srv  *httptest.Server
	hits map[string]*atomic.Int64
}

func newChartRepo(t *testing.T, versions ...string) *chartRepo {
	t.Helper()
	r := &chartRepo{dir: t.TempDir(), hits: map[string]*atomic.Int64{}}
	for _, v := range versions {
		packageChart(t, r.dir, "web", v)
	}
	files := http.FileServer(http.Dir(r.dir))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if n, ok := r.hits[req.URL.Path]; ok {
			n.Add(1)
		}
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	for _, p := range append([]string{"/index.yaml"}, tgzPaths(versions)...) {
		r.hits[p] = &atomic.Int64{}
	}
	r.index(t)
	return r
}

func tgzPaths(versions []string) []string {
	var out []string
	for _, v := range versions {
		out = append(out, "/web-"+v+".tgz")
	}
	return out
}

// index writes index.yaml for the archives in the directory, as helm repo index does.
func (r *chartRepo) index(t *testing.T) {
	t.Helper()
	idx, err := repov1.IndexDirectory(r.dir, r.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(r.dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *chartRepo) src(version string) schema.ChartSource {
	return schema.ChartSource{Kind: schema.ChartHTTP, Repo: r.srv.URL, Chart: "web", Version: version}
}

func loadVersion(t *testing.T, c *Chart) string {
	t.Helper()
	ch, err := chartloader.LoadArchive(bytes.NewReader(c.Archive))
	if err != nil {
		t.Fatal(err)
	}
	return ch.Metadata.Version
}

func TestFetchHTTP(t *testing.T) {
	repo := newChartRepo(t, "1.0.0", "1.2.0", "2.0.0-rc.1")
	f := &Fetcher{Dir: t.TempDir()}
	allow := []string{repo.srv.URL}
	ctx := context.Background()

	c, err := f.Fetch(ctx, repo.src("1.0.0"), allow)
	if err != nil {
		t.Fatal(err)
	}
	if v := loadVersion(t, c); v != "1.0.0" || c.Version != "1.0.0" || c.Stale != nil {
		t.Fatalf("fetched %s (%s), stale %v; want 1.0.0", v, c.Version, c.Stale)
	}
	if c.Digest != sha256Digest(c.Archive) {
		t.Errorf("digest %s is not the archive's", c.Digest)
	}
	newest, err := f.Fetch(ctx, repo.src(""), allow)
	if err != nil || newest.Version != "1.2.0" {
		t.Fatalf("newest = %+v, %v; want 1.2.0 (the release candidate is not a release)", newest, err)
	}
	constrained, err := f.Fetch(ctx, repo.src("^1.0"), allow)
	if err != nil || constrained.Version != "1.2.0" {
		t.Fatalf("^1.0 = %+v, %v; want 1.2.0", constrained, err)
	}

	// Cached by digest: a second fetch reads the index, not the archive.
	before := repo.hits["/web-1.0.0.tgz"].Load()
	again, err := f.Fetch(ctx, repo.src("1.0.0"), allow)
	if err != nil || !bytes.Equal(again.Archive, c.Archive) {
		t.Fatalf("second fetch: %v", err)
	}
	if got := repo.hits["/web-1.0.0.tgz"].Load(); got != before {
		t.Errorf("the archive was downloaded again (%d → %d) though its digest was cached", before, got)
	}

	// The repository is down: the cached chart, with the error.
	repo.srv.Close()
	stale, err := f.Fetch(ctx, repo.src("1.0.0"), allow)
	if err != nil {
		t.Fatalf("repository down, chart cached: %v", err)
	}
	if stale.Stale == nil || !bytes.Equal(stale.Archive, c.Archive) {
		t.Fatalf("stale = %v, same archive %v; want the cached chart with the error", stale.Stale, bytes.Equal(stale.Archive, c.Archive))
	}
	if _, err := f.Fetch(ctx, repo.src("9.9.9"), allow); err == nil {
		t.Fatal("repository down, version never cached: no error")
	}
	empty := &Fetcher{Dir: t.TempDir()}
	if _, err := empty.Fetch(ctx, repo.src("1.0.0"), allow); err == nil {
		t.Fatal("repository down, empty cache: no error")
	}
}

// TestFetchNotAllowed: a repository outside the allow-list is refused
// before any request, and the default (empty) list refuses all.
func TestFetchNotAllowed(t *testing.T) {
	repo := newChartRepo(t, "1.0.0")
	f := &Fetcher{Dir: t.TempDir()}
	for _, allow := range [][]string{nil, {"https://charts.example.com"}, {repo.srv.URL + "x"}} {
		_, err := f.Fetch(context.Background(), repo.src("1.0.0"), allow)
		if !errors.Is(err, ErrNotAllowed) {
			t.Errorf("allow %v: err = %v, want ErrNotAllowed", allow, err)
		}
	}
	if n := repo.hits["/index.yaml"].Load(); n != 0 {
		t.Errorf("%d requests to a repository not allowed", n)
	}
	if !Allowed(repo.srv.URL+"/sub", []string{repo.srv.URL + "/"}) || Allowed("oci://r.example.com/a", []string{"oci://r.example.com/ab"}) {
		t.Error("Allowed: prefix at a / boundary")
	}
}

// TestFetchRefusals: what the repository says that the cache must not hide,
// and the size limits.
func TestFetchRefusals(t *testing.T) {
	repo := newChartRepo(t, "1.0.0")
	allow := []string{repo.srv.URL}
	ctx := context.Background()
	f := &Fetcher{Dir: t.TempDir()}
	if _, err := f.Fetch(ctx, repo.src("1.0.0"), allow); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fetch(ctx, repo.src("3.0.0"), allow); err == nil || !strings.Contains(err.Error(), "no version matches 3.0.0") {
		t.Errorf("unknown version: %v", err)
	}
	small := &Fetcher{Dir: t.TempDir(), MaxArchiveBytes: 100}
	if _, err := small.Fetch(ctx, repo.src("1.0.0"), allow); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("archive over the limit: %v", err)
	}
	tiny := &Fetcher{Dir: t.TempDir(), MaxIndexBytes: 10}
	if _, err := tiny.Fetch(ctx, repo.src("1.0.0"), allow); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("index over the limit: %v", err)
	}
	// The archive changed after indexing: its digest is not the index's,
	// and a fresh cache must not serve it.
	packageChartTampered(t, repo.dir)
	fresh := &Fetcher{Dir: t.TempDir()}
	if _, err := fresh.Fetch(ctx, repo.src("1.0.0"), allow); err == nil || !strings.Contains(err.Error(), "is not the index's") {
		t.Errorf("tampered archive: %v", err)
	}
	// The cache that has the good archive keeps serving it (same digest).
	if c, err := f.Fetch(ctx, repo.src("1.0.0"), allow); err != nil || c.Stale != nil {
		t.Errorf("cached good archive: %v", err)
	}
}

func packageChartTampered(t *testing.T, dir string) {
	t.Helper()
	tmp := t.TempDir()
	file := packageChart(t, tmp, "web", "1.0.0")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Same name and version, other content: a different archive.
	b = append(b, 0)
	if err := os.WriteFile(filepath.Join(dir, "web-1.0.0.tgz"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFetchOCI pushes charts with Helm's registry client to an in-process
// registry on loopback and fetches them by oci:// reference.
func TestFetchOCI(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(srv.URL, "http://")
	client, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, v := range []string{"0.1.0", "0.2.0+build.1"} {
		data, err := os.ReadFile(packageChart(t, dir, "web", v))
		if err != nil {
			t.Fatal(err)
		}
		// Helm tags a version's "+" as "_"; its strict check compares the tag as written.
		if _, err := client.Push(data, host+"/charts/web:"+strings.ReplaceAll(v, "+", "_"), helmregistry.PushOptStrictMode(false)); err != nil {
			t.Fatalf("push %s: %v", v, err)
		}
	}
	f := &Fetcher{Dir: t.TempDir(), PlainHTTPHosts: []string{host}}
	ref := "oci://" + host + "/charts/web"
	allow := []string{"oci://" + host + "/charts"}
	ctx := context.Background()
	src := func(v string) schema.ChartSource {
		return schema.ChartSource{Kind: schema.ChartOCI, Repo: ref, Chart: "web", Version: v}
	}
	c, err := f.Fetch(ctx, src("0.1.0"), allow)
	if err != nil {
		t.Fatal(err)
	}
	if v := loadVersion(t, c); v != "0.1.0" {
		t.Fatalf("fetched %s, want 0.1.0", v)
	}
	newest, err := f.Fetch(ctx, src(""), allow)
	if err != nil || newest.Version != "0.2.0+build.1" || loadVersion(t, newest) != "0.2.0+build.1" {
		t.Fatalf("newest = %+v, %v", newest, err)
	}
	if _, err := f.Fetch(ctx, src("0.3.0"), allow); err == nil {
		t.Error("a version not pushed: no error")
	}
	if _, err := f.Fetch(ctx, src("0.1.0"), []string{"oci://" + host + "/other"}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("not allowed: %v", err)
	}
	srv.Close()
	stale, err := f.Fetch(ctx, src("0.1.0"), allow)
	if err != nil || stale.Stale == nil || !bytes.Equal(stale.Archive, c.Archive) {
		t.Fatalf("registry down: %+v, %v; want the cached chart with the error", stale, err)
	}
}

// TestCacheBounded: the cache keeps the most recent archives of a chart only.
func TestCacheBounded(t *testing.T) {
	versions := []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0"}
	repo := newChartRepo(t, versions...)
	f := &Fetcher{Dir: t.TempDir()}
	for _, v := range versions {
		if _, err := f.Fetch(context.Background(), repo.src(v), []string{repo.srv.URL}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // distinct modification times
	}
	entries, err := os.ReadDir(f.cacheDir(repo.src("")))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, e := range entries {
		kept = append(kept, e.Name())
	}
	if len(kept) != keepPerChart || strings.Contains(strings.Join(kept, ","), "1.0.0@") {
		t.Errorf("cache holds %v, want the %d newest", kept, keepPerChart)
	}
}

// TestFetchFromRepositoryThatNeverAnswers: a chart repository that accepts
// the connection and never answers ends the fetch at the Fetcher's timeout,
// with an error naming the repository and nothing cached.
func TestFetchFromRepositoryThatNeverAnswers(t *testing.T) {
	hung := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hung:
		}
	}))
	t.Cleanup(func() { close(hung); srv.Close() })
	dir := t.TempDir()
	f := &Fetcher{Dir: dir, Timeout: 300 * time.Millisecond}
	src := schema.ChartSource{Kind: schema.ChartHTTP, Repo: srv.URL, Chart: "web", Version: "0.1.0"}
	c, err := f.Fetch(context.Background(), src, []string{srv.URL})
	if err == nil || c != nil || !strings.Contains(err.Error(), strings.TrimPrefix(srv.URL, "http://")) {
		t.Fatalf("fetch from a repository that never answers: %+v, %v", c, err)
	}
	_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			t.Errorf("the cache holds %s after a fetch that never got an answer", p)
		}
		return nil
	})
}
