package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Image modes of the images section.
const (
	// ImagesBuildKit: arbor builds each `build` service's image with BuildKit.
	ImagesBuildKit = "buildkit"
	// ImagesExternal: CI builds and pushes; arbor waits for the image.
	ImagesExternal = "external"
)

// Defaults of the images section (the images package's own defaults).
const (
	DefaultImageBuildTimeout  = 20 * time.Minute
	DefaultImageMaxContext    = 256 << 20
	DefaultImageMaxConcurrent = 2
	DefaultImageWaitTimeout   = 30 * time.Minute
	DefaultImagePollInterval  = 2 * time.Second
	DefaultImageMaxPoll       = 30 * time.Second
)

// Images says how the images of services with `build` (or `has_repo`) get
// into a registry before arbor rolls them out (docs/images.md). With Build
// empty arbor neither builds nor waits: the image is taken as it is named.
type Images struct {
	// Build is the mode: "buildkit", "external" or "" (off).
	Build string `yaml:"build"`
	// Registry is the repository prefix images live under
	// (registry.example.com/previews); default: defaults.image_registry.
	Registry string `yaml:"registry"`
	// PlainHTTP speaks HTTP, not HTTPS, to Registry (a registry inside the
	// cluster or on loopback).
	PlainHTTP bool `yaml:"plain_http"`
	// CredentialsSecret names a kubernetes.io/dockerconfigjson Secret in
	// arbor's namespace: push credentials in build mode, the pods' pull
	// credentials in external mode.
	CredentialsSecret string `yaml:"credentials_secret"`

	// BuildKitAddr is the BuildKit daemon (unix:///path or tcp://host:port).
	BuildKitAddr string `yaml:"buildkit_addr"`
	// BuildKitTLS makes the connection to a tcp:// buildkit_addr mutual TLS.
	BuildKitTLS BuildKitTLS `yaml:"buildkit_tls"`
	// AllowedBaseRegistries are the registry hosts and repository prefixes
	// a Dockerfile's FROM may name (docker.io, ghcr.io/acme).
	AllowedBaseRegistries []string `yaml:"allowed_base_registries"`
	// BuildTimeout bounds one build, push included.
	BuildTimeout Duration `yaml:"build_timeout"`
	// MaxContextSize bounds the build context sent for one image.
	MaxContextSize ByteSize `yaml:"max_context_size"`
	// MaxConcurrentBuilds bounds the builds running at once.
	MaxConcurrentBuilds int `yaml:"max_concurrent_builds"`

	// WaitTimeout ends a wait for an image CI has not pushed (external mode).
	WaitTimeout Duration `yaml:"wait_timeout"`
	// PollInterval is the first pause between registry lookups; it doubles
	// up to MaxPollInterval.
	PollInterval    Duration `yaml:"poll_interval"`
	MaxPollInterval Duration `yaml:"max_poll_interval"`
	// NotificationTokenFile holds the bearer token the registry sends with
	// its notifications to /hooks/registry; without it arbor only polls.
	NotificationTokenFile string `yaml:"notification_token_file"`
}

// BuildKitTLS names the PEM files of a mutual TLS connection to BuildKit.
type BuildKitTLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name on buildkitd's certificate; default: the
	// address's host.
	ServerName string `yaml:"server_name"`
}

// Enabled reports whether any TLS setting is given.
func (t BuildKitTLS) Enabled() bool { return t != BuildKitTLS{} }

func (im *Images) setDefaults(d Defaults) {
	if im.Registry == "" {
		im.Registry = d.ImageRegistry
	}
	if im.BuildTimeout.Duration == 0 {
		im.BuildTimeout.Duration = DefaultImageBuildTimeout
	}
	if im.MaxContextSize.Bytes == 0 {
		im.MaxContextSize.Bytes = DefaultImageMaxContext
	}
	if im.MaxConcurrentBuilds == 0 {
		im.MaxConcurrentBuilds = DefaultImageMaxConcurrent
	}
	if im.WaitTimeout.Duration == 0 {
		im.WaitTimeout.Duration = DefaultImageWaitTimeout
	}
	if im.PollInterval.Duration == 0 {
		im.PollInterval.Duration = DefaultImagePollInterval
	}
	if im.MaxPollInterval.Duration == 0 {
		im.MaxPollInterval.Duration = max(DefaultImageMaxPoll, im.PollInterval.Duration)
	}
}

// registryPrefix is a registry host (with an optional port) and an optional
// repository path: what registry and allowed_base_registries name.
var registryPrefix = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)

func (d *decoder) images(im *Images, base string) {
	const f = "images."
	switch im.Build {
	case "", ImagesBuildKit, ImagesExternal:
	default:
		d.fail(f+"build", "%q is not a mode: use %s or %s", im.Build, ImagesBuildKit, ImagesExternal)
	}
	if im.Build != "" && im.Registry == "" {
		d.fail(f+"registry", "required with build: %s (or set defaults.image_registry)", im.Build)
	}
	if im.Registry != "" && !registryPrefix.MatchString(im.Registry) {
		d.fail(f+"registry", "%q must be a registry host with an optional repository path, like registry.example.com/previews", im.Registry)
	}
	if im.CredentialsSecret != "" && (len(im.CredentialsSecret) > 253 || !dnsSubdomain.MatchString(im.CredentialsSecret)) {
		d.fail(f+"credentials_secret", "%q is not a valid Secret name", im.CredentialsSecret)
	}
	if im.Build == ImagesBuildKit {
		d.buildkit(im, base)
	}
	d.atLeast(f+"wait_timeout", im.WaitTimeout.Duration, time.Second)
	d.atLeast(f+"poll_interval", im.PollInterval.Duration, 100*time.Millisecond)
	if im.MaxPollInterval.Duration < im.PollInterval.Duration {
		d.fail(f+"max_poll_interval", "must be at least poll_interval (%s), got %s", im.PollInterval.Duration, im.MaxPollInterval.Duration)
	}
	im.NotificationTokenFile = d.file0(base, im.NotificationTokenFile, f+"notification_token_file")
}

// buildkit checks the keys of build mode.
func (d *decoder) buildkit(im *Images, base string) {
	const f = "images."
	if u, err := url.Parse(im.BuildKitAddr); im.BuildKitAddr == "" || err != nil ||
		!(u.Scheme == "unix" && u.Path != "" || u.Scheme == "tcp" && u.Host != "") {
		d.fail(f+"buildkit_addr", "%q must be unix:///path/to/buildkitd.sock or tcp://host:port", im.BuildKitAddr)
	}
	for i, r := range im.AllowedBaseRegistries {
		if !registryPrefix.MatchString(strings.TrimSuffix(r, "/")) {
			d.fail(fmt.Sprintf("%sallowed_base_registries[%d]", f, i), "%q must be a registry host with an optional repository path, like docker.io or ghcr.io/acme", r)
		}
	}
	d.buildkitTLS(im, base)
	d.atLeast(f+"build_timeout", im.BuildTimeout.Duration, time.Second)
	if im.MaxContextSize.Bytes < 1<<20 {
		d.fail(f+"max_context_size", "must be at least 1Mi, got %d bytes", im.MaxContextSize.Bytes)
	}
	if im.MaxConcurrentBuilds < 1 {
		d.fail(f+"max_concurrent_builds", "must be at least 1, got %d", im.MaxConcurrentBuilds)
	}
}

// buildkitTLS checks the TLS files: all three, for a tcp:// address.
func (d *decoder) buildkitTLS(im *Images, base string) {
	const f = "images.buildkit_tls"
	t := &im.BuildKitTLS
	if !t.Enabled() {
		return
	}
	if !strings.HasPrefix(im.BuildKitAddr, "tcp://") {
		d.fail(f, "TLS needs a tcp:// buildkit_addr")
	}
	if t.CAFile == "" || t.CertFile == "" || t.KeyFile == "" {
		d.fail(f, "give ca_file, cert_file and key_file: the connection is mutual TLS")
	}
	t.CAFile = d.file0(base, t.CAFile, f+".ca_file")
	t.CertFile = d.file0(base, t.CertFile, f+".cert_file")
	t.KeyFile = d.file0(base, t.KeyFile, f+".key_file")
}

func (d *decoder) atLeast(field string, got, min time.Duration) {
	if got < min {
		d.fail(field, "must be at least %s, got %s", min, got)
	}
}
