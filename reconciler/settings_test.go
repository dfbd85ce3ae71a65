package reconciler

import (
	"testing"

	"github.com/arbordev/arbor/config"
)

// TestSettingsHashFollowsKustomizeLimits: raising a kustomize limit changes
// the settings hash, so a branch whose render the old limit refused is
// rendered again instead of staying known-invalid.
func TestSettingsHashFollowsKustomizeLimits(t *testing.T) {
	c := &config.Config{}
	a := config.App{Name: "a"}
	before := settingsHash(c, a)
	a.Kustomize.MaxFileSize.Bytes = 64 << 20
	if after := settingsHash(c, a); after == before {
		t.Fatalf("settings hash %s unchanged by kustomize.max_file_size", after)
	}
}
