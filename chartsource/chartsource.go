// Package chartsource fetches the remote Helm charts of a template for the
// daemon (and for arbor validate --fetch-charts): from an HTTP chart
// repository (its index.yaml and a packaged chart) or from an OCI registry.
// It is the only part of arbor that downloads charts; render takes what it
// fetched as bytes and stays free of I/O.
//
// A branch is untrusted: it names the repositories, so a fetch is refused
// unless the repository is in the allow-list the caller passes (the daemon
// config's, per app; empty by default). Every download is bounded in size
// and time. Charts are cached on disk by (repository, chart, version,
// digest): a digest already cached is not downloaded again, and when the
// repository cannot be reached the newest cached chart of that version is
// returned with the error, so the last good environment keeps running and
// the error shows in its status.
package chartsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	kyaml "sigs.k8s.io/yaml"

	"github.com/arbordev/arbor/schema"
)

// Defaults of Fetcher's limits.
const (
	DefaultMaxIndexBytes   = 16 << 20
	DefaultMaxArchiveBytes = 16 << 20
	DefaultTimeout         = 60 * time.Second
	// keepPerChart is how many archives of one (repository, chart) the
	// cache keeps: the most recently written or read.
	keepPerChart = 5
)

// Fetcher downloads and caches charts. It is safe for concurrent use.
type Fetcher struct {
	// Dir is the cache directory; it is created when missing.
	Dir string
	// Client makes the HTTP requests (http.DefaultClient when nil).
	Client *http.Client
	// MaxIndexBytes and MaxArchiveBytes bound an index.yaml and a chart archive.
	MaxIndexBytes   int64
	MaxArchiveBytes int64
	// Timeout bounds one Fetch, every request included.
	Timeout time.Duration
	// PlainHTTPHosts are registry hosts (host:port) reached over plain HTTP
	// for oci:// references: a registry on a trusted network, or a test's.
	PlainHTTPHosts []string

	mu sync.Mutex // serializes cache writes
}

// Chart is a fetched chart.
type Chart struct {
	Archive []byte // the packaged chart (.tgz)
	Version string // the version fetched (the newest, when none was asked for)
	Digest  string // sha256:HEX of the archive, or of the OCI manifest
	// Stale is set when the repository could not be reached and the chart
	// came from the cache: the caller renders with it and shows the error.
	Stale error
}

// ErrNotAllowed is returned for a repository outside the allow-list.
var ErrNotAllowed = errors.New("chart repository not allowed")

// Allowed reports whether repo (an https:// repository URL or an oci://
// reference) is within one of the allowed prefixes: equal to it, or under it
// at a "/" boundary.
func Allowed(repo string, allow []string) bool {
	repo = strings.TrimSuffix(repo, "/")
	for _, a := range allow {
		a = strings.TrimSuffix(strings.TrimSpace(a), "/")
		if a != "" && (repo == a || strings.HasPrefix(repo, a+"/")) {
			return true
		}
	}
	return false
}

// Fetch returns the chart src names, from the cache or the network. allow
// is the allow-list of repositories.
func (f *Fetcher) Fetch(ctx context.Context, src schema.ChartSource, allow []string) (*Chart, error) {
	if !Allowed(src.Repo, allow) {
		return nil, fmt.Errorf("%w: %s is not in the app's allowed chart repositories (chart_repositories in the daemon config)", ErrNotAllowed, src.Repo)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout())
	defer cancel()
	var c *Chart
	var err error
	switch src.Kind {
	case schema.ChartHTTP:
		c, err = f.fetchHTTP(ctx, src)
	case schema.ChartOCI:
		c, err = f.fetchOCI(ctx, src)
	default:
		return nil, fmt.Errorf("%s: not a remote chart", src.Repo)
	}
	if err == nil {
		return c, nil
	}
	var refused *refusedError
	if errors.As(err, &refused) {
		return nil, err // the repository answered: the cache must not hide that
	}
	cached, cerr := f.lastCached(src)
	if cerr != nil {
		return nil, err
	}
	cached.Stale = err
	return cached, nil
}

// refusedError is an answer of the repository that a cached chart must not
// paper over: no such chart or version, a digest that does not match, an
// archive over the limit.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

func refused(format string, args ...any) error {
	return &refusedError{fmt.Errorf(format, args...)}
}

func (f *Fetcher) timeout() time.Duration {
	if f.Timeout > 0 {
		return f.Timeout
	}
	return DefaultTimeout
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return http.DefaultClient
}

func (f *Fetcher) maxIndex() int64 {
	if f.MaxIndexBytes > 0 {
		return f.MaxIndexBytes
	}
	return DefaultMaxIndexBytes
}

func (f *Fetcher) maxArchive() int64 {
	if f.MaxArchiveBytes > 0 {
		return f.MaxArchiveBytes
	}
	return DefaultMaxArchiveBytes
}

// --- HTTP chart repositories ---

// index is the part of a repository's index.yaml arbor reads.
type index struct {
	Entries map[string][]indexEntry `json:"entries"`
}

type indexEntry struct {
	Version string   `json:"version"`
	URLs    []string `json:"urls"`
	Digest  string   `json:"digest"`
}

func (f *Fetcher) fetchHTTP(ctx context.Context, src schema.ChartSource) (*Chart, error) {
	base, err := url.Parse(src.Repo + "/")
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") {
		return nil, refused("%s: not an http(s) chart repository URL", src.Repo)
	}
	data, err := f.get(ctx, base.JoinPath("index.yaml").String(), f.maxIndex())
	if err != nil {
		return nil, fmt.Errorf("%s: index.yaml: %w", src.Repo, err)
	}
	var budget schema.AliasBudget
	if err := budget.CheckYAML("index.yaml", data); err != nil {
		return nil, refused("%s: %w", src.Repo, err)
	}
	var idx index
	if err := kyaml.Unmarshal(data, &idx); err != nil {
		return nil, refused("%s: index.yaml: %w", src.Repo, err)
	}
	e, err := pickEntry(idx.Entries[src.Chart], src)
	if err != nil {
		return nil, err
	}
	digest := ""
	if e.Digest != "" {
		digest = "sha256:" + strings.TrimPrefix(e.Digest, "sha256:")
	}
	if digest != "" {
		if c, err := f.readCache(src, e.Version, digest); err == nil {
			return c, nil
		}
	}
	if len(e.URLs) == 0 {
		return nil, refused("%s: %s %s has no download URL in index.yaml", src.Repo, src.Chart, e.Version)
	}
	u, err := base.Parse(e.URLs[0])
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, refused("%s: %s %s: download URL %q is not http(s)", src.Repo, src.Chart, e.Version, e.URLs[0])
	}
	archive, err := f.get(ctx, u.String(), f.maxArchive())
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", src.Repo, src.Chart, e.Version, err)
	}
	got := sha256Digest(archive)
	if digest != "" && got != digest {
		return nil, refused("%s: %s %s: the archive's digest %s is not the index's %s", src.Repo, src.Chart, e.Version, got, digest)
	}
	c := &Chart{Archive: archive, Version: e.Version, Digest: got}
	return c, f.writeCache(src, c)
}

// pickEntry chooses the version asked for: an exact version, else a semver
// constraint (~1.2, ^2), else the newest; pre-releases only when named.
func pickEntry(entries []indexEntry, src schema.ChartSource) (indexEntry, error) {
	if len(entries) == 0 {
		return indexEntry{}, refused("%s: no chart %s in index.yaml", src.Repo, src.Chart)
	}
	var versions []string
	for _, e := range entries {
		versions = append(versions, e.Version)
	}
	v, err := pickVersion(versions, src.Version)
	if err != nil {
		return indexEntry{}, refused("%s: %s: %w", src.Repo, src.Chart, err)
	}
	for _, e := range entries {
		if e.Version == v {
			return e, nil
		}
	}
	return indexEntry{}, refused("%s: %s: no version %s", src.Repo, src.Chart, v)
}

// pickVersion chooses among versions as pickEntry says.
func pickVersion(versions []string, want string) (string, error) {
	for _, v := range versions {
		if want != "" && (v == want || strings.TrimPrefix(v, "v") == strings.TrimPrefix(want, "v")) {
			return v, nil
		}
	}
	var cons *semver.Constraints
	if want != "" {
		c, err := semver.NewConstraint(want)
		if err != nil {
			return "", fmt.Errorf("no version %s", want)
		}
		cons = c
	}
	var best *semver.Version
	bestRaw := ""
	for _, raw := range versions {
		v, err := semver.NewVersion(raw)
		if err != nil {
			continue
		}
		if cons == nil && v.Prerelease() != "" {
			continue
		}
		if cons != nil && !cons.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, bestRaw = v, raw
		}
	}
	if best == nil {
		if want == "" {
			return "", errors.New("no released version")
		}
		return "", fmt.Errorf("no version matches %s", want)
	}
	return bestRaw, nil
}

// get downloads u within limit bytes.
func (f *Fetcher) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("GET %s: %s", redactURL(u), resp.Status)
		if resp.StatusCode == http.StatusNotFound {
			return nil, &refusedError{err}
		}
		return nil, err
	}
	if resp.ContentLength > limit {
		return nil, refused("GET %s: %d bytes, over the limit of %d", redactURL(u), resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, refused("GET %s: over the limit of %d bytes", redactURL(u), limit)
	}
	return b, nil
}

// redactURL drops credentials and the query from a URL shown in errors.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User, p.RawQuery = nil, ""
	return p.String()
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// --- the cache ---

// cacheDir is the directory of one (repository, chart): the repository is
// hashed, so no part of a URL becomes a path.
func (f *Fetcher) cacheDir(src schema.ChartSource) string {
	sum := sha256.Sum256([]byte(src.Repo))
	return filepath.Join(f.Dir, hex.EncodeToString(sum[:16]), safeName(src.Chart))
}

// safeName keeps letters, digits, '.', '-' and '_' of s.
func safeName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		case c == '.' && b.Len() > 0:
			b.WriteRune(c)
		default:
			b.WriteRune('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// cacheFile is the file of (repository, chart, version, digest).
func (f *Fetcher) cacheFile(src schema.ChartSource, version, digest string) string {
	return filepath.Join(f.cacheDir(src), safeName(version)+"@"+strings.TrimPrefix(digest, "sha256:")+".tgz")
}

func (f *Fetcher) readCache(src schema.ChartSource, version, digest string) (*Chart, error) {
	file := f.cacheFile(src, version, digest)
	b, err := readBounded(file, f.maxArchive())
	if err != nil {
		return nil, err
	}
	got := sha256Digest(b)
	if got != digest {
		// An OCI chart is cached under its manifest's digest, which is not
		// the archive's: the .layer file beside it records the archive's.
		layer, err := readBounded(file+".layer", 128)
		if err != nil || strings.TrimSpace(string(layer)) != got {
			return nil, fmt.Errorf("cached chart %s does not match its digest", filepath.Base(file))
		}
	}
	// A chart in use stays among the most recent, which pruning keeps.
	now := time.Now()
	_ = os.Chtimes(file, now, now)
	return &Chart{Archive: b, Version: version, Digest: digest}, nil
}

// writeCache stores c atomically (a temporary file renamed into place).
func (f *Fetcher) writeCache(src schema.ChartSource, c *Chart) error {
	if f.Dir == "" {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.cacheDir(src)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("chart cache: %w", err)
	}
	file := f.cacheFile(src, c.Version, c.Digest)
	if got := sha256Digest(c.Archive); got != c.Digest {
		if err := writeAtomic(file+".layer", []byte(got)); err != nil {
			return err
		}
	}
	if err := writeAtomic(file, c.Archive); err != nil {
		return err
	}
	return pruneCache(dir)
}

// pruneCache keeps the keepPerChart most recently used archives of dir
// (and their .layer files), so the cache of a chart stays bounded.
func pruneCache(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("chart cache: %w", err)
	}
	type file struct {
		name string
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".tgz") && !strings.HasPrefix(e.Name(), ".") {
			files = append(files, file{e.Name(), info.ModTime()})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.After(files[j].mod) })
	for _, old := range files[min(len(files), keepPerChart):] {
		for _, p := range []string{old.name, old.name + ".layer"} {
			if err := os.Remove(filepath.Join(dir, p)); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("chart cache: %w", err)
			}
		}
	}
	return nil
}

func writeAtomic(file string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tmp-*")
	if err != nil {
		return fmt.Errorf("chart cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("chart cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("chart cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("chart cache: %w", err)
	}
	return nil
}

// lastCached is the newest cached chart for src: of its version when it
// names one exactly, else the highest version cached (by semver, then the
// most recently written).
func (f *Fetcher) lastCached(src schema.ChartSource) (*Chart, error) {
	if f.Dir == "" {
		return nil, errors.New("no cache")
	}
	entries, err := os.ReadDir(f.cacheDir(src))
	if err != nil {
		return nil, err
	}
	type cand struct {
		version, digest string
		mod             time.Time
	}
	var cands []cand
	var versions []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".tgz") || strings.HasPrefix(name, ".") {
			continue
		}
		v, d, ok := strings.Cut(strings.TrimSuffix(name, ".tgz"), "@")
		info, err := e.Info()
		if !ok || err != nil {
			continue
		}
		cands = append(cands, cand{v, "sha256:" + d, info.ModTime()})
		versions = append(versions, v)
	}
	want, err := pickVersion(versions, src.Version)
	if err != nil {
		return nil, err
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].mod.After(cands[j].mod) })
	for _, c := range cands {
		if c.version == want {
			return f.readCache(src, c.version, c.digest)
		}
	}
	return nil, errors.New("not cached")
}

func readBounded(file string, limit int64) ([]byte, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: over %d bytes", path.Base(file), limit)
	}
	return b, nil
}

// Remote is a remote chart of a template: its index in charts:, its name,
// and where it comes from.
type Remote struct {
	Index  int
	Name   string
	Source schema.ChartSource
}

// Remotes lists the template's charts that must be fetched (from an HTTP
// chart repository or an oci:// registry); local and git charts, and
// entries whose source the schema refuses, are left out.
func Remotes(t *schema.Template) []Remote {
	if t == nil {
		return nil
	}
	var out []Remote
	for i, ch := range t.Charts {
		src, err := ch.Source()
		if err == nil && (src.Kind == schema.ChartHTTP || src.Kind == schema.ChartOCI) {
			out = append(out, Remote{Index: i, Name: ch.Name, Source: src})
		}
	}
	return out
}
