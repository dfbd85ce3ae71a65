package images

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	spb "github.com/moby/buildkit/sourcepolicy/pb"
)

// dockerHub is how go-containerregistry names Docker Hub; BuildKit and people
// write docker.io.
const dockerHub = "index.docker.io"

// allowList is the set of places base images may come from: registry hosts
// ("docker.io", "127.0.0.1:5000") and repository prefixes on a host
// ("ghcr.io/acme"), normalized the way go-containerregistry names references.
type allowList []string

// newAllowList normalizes the configured entries; an entry that is not a
// registry host or repository prefix is an error naming it.
func newAllowList(entries []string) (allowList, error) {
	var out allowList
	for _, e := range entries {
		e = strings.TrimSuffix(strings.TrimSpace(e), "/")
		host, prefix, _ := strings.Cut(e, "/")
		r, err := name.NewRegistry(host)
		if err != nil || host == "" || strings.ContainsAny(e, " \t@") || strings.Contains(prefix, ":") {
			return nil, fmt.Errorf("allowed base registry %q: not a registry host or repository prefix", e)
		}
		if prefix == "" {
			out = append(out, r.RegistryStr())
			continue
		}
		// A prefix is taken as written: go-containerregistry would add
		// Docker Hub's "library/" to a one-part name.
		if _, err := name.NewRepository(r.RegistryStr() + "/" + prefix + "/x"); err != nil {
			return nil, fmt.Errorf("allowed base registry %q: not a registry host or repository prefix", e)
		}
		out = append(out, r.RegistryStr()+"/"+prefix)
	}
	return out, nil
}

// allows reports whether a base image reference comes from an allowed place.
func (a allowList) allows(ref name.Reference) bool {
	repo := ref.Context()
	for _, e := range a {
		if e == repo.RegistryStr() || repo.Name() == e || strings.HasPrefix(repo.Name(), e+"/") {
			return true
		}
	}
	return false
}

func (a allowList) String() string {
	if len(a) == 0 {
		return "none"
	}
	return strings.Join(a, ", ")
}

// sourcePolicy is the BuildKit source policy of every build: deny every source,
// then allow the build's own local context and Dockerfile, and images from the
// allowed places. BuildKit applies it to the LLB the frontend produces, so it
// also catches what a static reading of the Dockerfile cannot see (ONBUILD
// triggers of a base image, values computed by a stage's ENV). The last rule
// that matches a source decides.
func (a allowList) sourcePolicy() *spb.Policy {
	rules := []*spb.Rule{
		{Action: spb.PolicyAction_DENY, Selector: &spb.Selector{Identifier: "*", MatchType: spb.MatchType_WILDCARD}},
		{Action: spb.PolicyAction_ALLOW, Selector: &spb.Selector{Identifier: "local://*", MatchType: spb.MatchType_WILDCARD}},
	}
	for _, e := range a {
		// BuildKit names Docker Hub images docker.io/NAMESPACE/NAME.
		if e == dockerHub || strings.HasPrefix(e, dockerHub+"/") {
			e = "docker.io" + strings.TrimPrefix(e, dockerHub)
		}
		rules = append(rules, &spb.Rule{
			Action:   spb.PolicyAction_ALLOW,
			Selector: &spb.Selector{Identifier: "docker-image://" + e + "/*", MatchType: spb.MatchType_WILDCARD},
		})
	}
	return &spb.Policy{Version: 1, Rules: rules}
}
