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

// A changed quota or limit range re-renders every environment (they are
// objects of it); a changed max_environments does not (it decides which
// branches run, not what they run).
func TestSettingsHashFollowsCostGuards(t *testing.T) {
	c := &config.Config{}
	a := config.App{Name: "a"}
	base := settingsHash(c, a)
	c.Defaults.ResourceQuota = map[string]string{"pods": "10"}
	withQuota := settingsHash(c, a)
	if withQuota == base {
		t.Error("settings hash unchanged by defaults.resource_quota")
	}
	a.LimitRange = map[string]map[string]string{"default": {"memory": "256Mi"}}
	if settingsHash(c, a) == withQuota {
		t.Error("settings hash unchanged by the app's limit_range")
	}
	a.LimitRange = nil
	c.Defaults.MaxEnvironments, a.MaxEnvironments = 3, 2
	if settingsHash(c, a) != withQuota {
		t.Error("settings hash changed by max_environments")
	}
}
