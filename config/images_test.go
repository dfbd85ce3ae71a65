package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadImages(t *testing.T) {
	cfg, err := Load(fixture(t, `apps: [{name: a, repo: repo}]
defaults: {image_registry: registry.example.com/previews}
images:
  build: buildkit
  plain_http: true
  credentials_secret: registry-push
  buildkit_addr: tcp://buildkitd.arbor-system:1234
  buildkit_tls: {ca_file: token, cert_file: user, key_file: pass}
  allowed_base_registries: [docker.io, ghcr.io/acme, "127.0.0.1:5000"]
  build_timeout: 10m
  max_context_size: 64Mi
  max_concurrent_builds: 3
  notification_token_file: hook
`))
	if err != nil {
		t.Fatal(err)
	}
	im := cfg.Images
	if im.Build != ImagesBuildKit || im.Registry != "registry.example.com/previews" || !im.PlainHTTP ||
		im.CredentialsSecret != "registry-push" || im.BuildKitAddr != "tcp://buildkitd.arbor-system:1234" ||
		len(im.AllowedBaseRegistries) != 3 || im.BuildTimeout.Duration != 10*time.Minute ||
		im.MaxContextSize.Bytes != 64<<20 || im.MaxConcurrentBuilds != 3 || !strings.HasSuffix(im.NotificationTokenFile, "/hook") ||
		!strings.HasSuffix(im.BuildKitTLS.CAFile, "/token") || !strings.HasSuffix(im.BuildKitTLS.KeyFile, "/pass") {
		t.Errorf("images section: %+v", im)
	}
	if im.WaitTimeout.Duration != DefaultImageWaitTimeout || im.PollInterval.Duration != DefaultImagePollInterval || im.MaxPollInterval.Duration != DefaultImageMaxPoll {
		t.Errorf("wait defaults not applied: %+v", im)
	}
}

func TestLoadImagesOffByDefault(t *testing.T) {
	cfg, err := Load(fixture(t, "apps: [{name: a, repo: repo}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Images.Build != "" {
		t.Errorf("images.build = %q, want off", cfg.Images.Build)
	}
}

func TestLoadImagesErrors(t *testing.T) {
	const app = "apps: [{name: a, repo: repo}]\n"
	tests := []struct{ name, body, want string }{
		{"mode", "images: {build: docker}", `images.build: "docker" is not a mode`},
		{"no_registry", "images: {build: external}", "images.registry: required with build: external"},
		{"bad_registry", "images: {build: external, registry: \"https://r.example.com\"}", `images.registry: "https://r.example.com" must be a registry host`},
		{"no_addr", "images: {build: buildkit, registry: r.example.com}", `images.buildkit_addr: "" must be`},
		{"bad_addr", "images: {build: buildkit, registry: r.example.com, buildkit_addr: \"http://b:1234\"}", "images.buildkit_addr"},
		{"bad_allowed", "images: {build: buildkit, registry: r.example.com, buildkit_addr: \"unix:///run/b.sock\", allowed_base_registries: [\"x y\"]}", `images.allowed_base_registries[0]: "x y"`},
		{"small_context", "images: {build: buildkit, registry: r.example.com, buildkit_addr: \"unix:///run/b.sock\", max_context_size: 1Ki}", "images.max_context_size: must be at least 1Mi"},
		{"short_timeout", "images: {build: buildkit, registry: r.example.com, buildkit_addr: \"unix:///run/b.sock\", build_timeout: 10ms}", "images.build_timeout: must be at least 1s"},
		{"concurrency", "images: {build: buildkit, registry: r.example.com, buildkit_addr: \"unix:///run/b.sock\", max_concurrent_builds: -1}", "images.max_concurrent_builds: must be at least 1"},
		{"poll_order", "images: {build: external, registry: r.example.com, poll_interval: 1m, max_poll_interval: 10s}", "images.max_poll_interval: must be at least poll_interval"},
		{"secret_name", "images: {build: external, registry: r.example.com, credentials_secret: Bad_Name}", `images.credentials_secret: "Bad_Name"`},
		{"token_file", "images: {build: external, registry: r.example.com, notification_token_file: nope}", "images.notification_token_file:"},
		{"tls_partial", "images: {build: buildkit, registry: r.example.com, buildkit_addr: \"tcp://b:1234\", buildkit_tls: {ca_file: token}}", "images.buildkit_tls: give ca_file, cert_file and key_file"},
		{"tls_on_unix", "images: {build: buildkit, registry: r.example.com, buildkit_addr: \"unix:///run/b.sock\", buildkit_tls: {ca_file: token, cert_file: user, key_file: pass}}", "images.buildkit_tls: TLS needs a tcp://"},
		{"tls_file_missing", "images: {build: buildkit, registry: r.example.com, buildkit_addr: \"tcp://b:1234\", buildkit_tls: {ca_file: nope, cert_file: user, key_file: pass}}", "images.buildkit_tls.ca_file:"},
		{"unknown_key", "images: {build: external, registry: r.example.com, dockerfile: x}", "images.dockerfile: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(fixture(t, app+tt.body+"\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "arbor.yaml:2:") {
				t.Errorf("error %v names no FILE:LINE", err)
			}
		})
	}
}
