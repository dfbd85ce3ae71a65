package config

import (
	"regexp"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Guards are the cost guards of an app's environments
// (docs/configuration.md#cost-guards): a ResourceQuota and a LimitRange in
// every environment namespace, and a cap on how many environments the app
// runs at once.
type Guards struct {
	// ResourceQuota is the quota's spec.hard: resource name → quantity
	// ("requests.cpu": "4", "limits.memory": "8Gi", "pods": "20"). Empty: none.
	ResourceQuota map[string]string
	// LimitRange are the container limits, by part (default,
	// default_request, max, min) then resource (cpu, memory,
	// ephemeral-storage). Empty: none.
	LimitRange map[string]map[string]string
	// MaxEnvironments caps the app's environments; 0: no cap.
	MaxEnvironments int
}

// LimitRangeParts are the parts a limit_range may give, and the
// LimitRange field each becomes.
var LimitRangeParts = map[string]string{"default": "default", "default_request": "defaultRequest", "max": "max", "min": "min"}

// limitRangeResources are the container resources a LimitRange bounds.
var limitRangeResources = []string{"cpu", "memory", "ephemeral-storage"}

// GuardsFor returns app a's cost guards: each of its own settings, else the
// defaults'. An app's resource_quota: {} or limit_range: {} turns the
// default off.
func (c *Config) GuardsFor(a App) Guards {
	g := Guards{ResourceQuota: c.Defaults.ResourceQuota, LimitRange: c.Defaults.LimitRange, MaxEnvironments: c.Defaults.MaxEnvironments}
	if a.ResourceQuota != nil {
		g.ResourceQuota = a.ResourceQuota
	}
	if a.LimitRange != nil {
		g.LimitRange = a.LimitRange
	}
	if a.MaxEnvironments != 0 {
		g.MaxEnvironments = a.MaxEnvironments
	}
	return g
}

// quotaName is what a ResourceQuota's spec.hard may name: a resource
// ("pods", "requests.cpu", "limits.memory", "requests.storage",
// "<class>.storageclass.storage.k8s.io/requests.storage") or an object count
// ("count/deployments.apps").
var quotaName = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// guards checks the cost guard keys written at field (defaults or an app).
func (d *decoder) guards(field string, quota map[string]string, limits map[string]map[string]string, maxEnvs int) {
	for _, k := range sortedKeys(quota) {
		f := field + ".resource_quota." + k
		if len(k) > 253 || !quotaName.MatchString(k) {
			d.fail(f, "%q is not a resource a ResourceQuota can bound (like requests.cpu, limits.memory, pods or count/deployments.apps)", k)
			continue
		}
		d.quantity(f, quota[k])
	}
	for _, part := range sortedKeys(limits) {
		f := field + ".limit_range." + part
		if _, ok := LimitRangeParts[part]; !ok {
			d.fail(f, "unknown part; use default, default_request, max or min")
			continue
		}
		for _, res := range sortedKeys(limits[part]) {
			if !slices.Contains(limitRangeResources, res) {
				d.fail(f+"."+res, "unknown resource; use %s", strings.Join(limitRangeResources, ", "))
				continue
			}
			d.quantity(f+"."+res, limits[part][res])
		}
	}
	if maxEnvs < 0 {
		d.fail(field+".max_environments", "must be 0 (no cap) or more, got %d", maxEnvs)
	}
}

func (d *decoder) quantity(field, v string) {
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Sign() < 0 {
		d.fail(field, "%q is not a quantity: write it like 500m, 2, 512Mi or 1Gi", v)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
