package chartsource

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/arbordev/arbor/schema"
)

// Media types of a Helm chart in an OCI registry.
const (
	helmChartLayer       = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	helmLegacyChartLayer = "application/tar+gzip"
	maxManifestBytes     = 4 << 20
)

// fetchOCI fetches oci://HOST/PATH/CHART at the version asked for (the tag;
// Helm writes "+" as "_"), or at the highest released version tag.
func (f *Fetcher) fetchOCI(ctx context.Context, src schema.ChartSource) (*Chart, error) {
	repoName := strings.TrimPrefix(src.Repo, "oci://")
	var opts []name.Option
	if host, _, _ := strings.Cut(repoName, "/"); slices.Contains(f.PlainHTTPHosts, host) {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(repoName, opts...)
	if err != nil {
		return nil, refused("%s: %w", src.Repo, err)
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(f.transport())}
	version := src.Version
	if _, err := semver.NewVersion(version); err != nil { // none, or a constraint: choose among the tags
		tags, err := remote.List(repo, ropts...)
		if err != nil {
			return nil, ociError(src, err)
		}
		var versions []string
		for _, t := range tags {
			versions = append(versions, strings.ReplaceAll(t, "_", "+"))
		}
		if version, err = pickVersion(versions, version); err != nil {
			return nil, refused("%s: %w", src.Repo, err)
		}
	}
	ref := repo.Tag(strings.ReplaceAll(version, "+", "_"))
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, ociError(src, err)
	}
	digest := desc.Digest.String()
	if c, err := f.readCache(src, version, digest); err == nil {
		return c, nil
	}
	if len(desc.Manifest) > maxManifestBytes {
		return nil, refused("%s:%s: manifest over %d bytes", src.Repo, version, maxManifestBytes)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest)))
	if err != nil {
		return nil, refused("%s:%s: manifest: %w", src.Repo, version, err)
	}
	layer, err := chartLayer(m)
	if err != nil {
		return nil, refused("%s:%s: %w", src.Repo, version, err)
	}
	if layer.Size > f.maxArchive() {
		return nil, refused("%s:%s: the chart is %d bytes, over the limit of %d", src.Repo, version, layer.Size, f.maxArchive())
	}
	archive, err := f.blob(ref.Context().Digest(layer.Digest.String()), ropts)
	if err != nil {
		return nil, ociError(src, err)
	}
	if got := sha256Digest(archive); got != layer.Digest.String() {
		return nil, refused("%s:%s: the chart layer's digest %s is not the manifest's %s", src.Repo, version, got, layer.Digest)
	}
	c := &Chart{Archive: archive, Version: version, Digest: digest}
	return c, f.writeCache(src, c)
}

// chartLayer finds the one chart layer of a Helm chart manifest.
func chartLayer(m *v1.Manifest) (v1.Descriptor, error) {
	for _, l := range m.Layers {
		if l.MediaType == helmChartLayer || l.MediaType == helmLegacyChartLayer {
			return l, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("not a Helm chart: no layer of type %s", helmChartLayer)
}

// blob downloads a layer within the archive limit.
func (f *Fetcher) blob(d name.Digest, ropts []remote.Option) ([]byte, error) {
	l, err := remote.Layer(d, ropts...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, f.maxArchive()+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > f.maxArchive() {
		return nil, refused("chart layer over the limit of %d bytes", f.maxArchive())
	}
	return b, nil
}

func (f *Fetcher) transport() http.RoundTripper {
	if f.Client != nil && f.Client.Transport != nil {
		return f.Client.Transport
	}
	return http.DefaultTransport
}

// ociError marks the registry's own "no such thing" answers as refusals,
// which the cache does not hide; anything else (unreachable) may fall back.
func ociError(src schema.ChartSource, err error) error {
	if te, ok := err.(*transport.Error); ok && (te.StatusCode == http.StatusNotFound || te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return refused("%s: %w", src.Repo, err)
	}
	return fmt.Errorf("%s: %w", src.Repo, err)
}
