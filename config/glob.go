package config

import "github.com/arbordev/arbor/schema"

// BranchFilter is an app's branches key. It is the template's filter type,
// so that the daemon and the template read a branch pattern the same way
// (docs/release-yaml.md#branch-patterns); Load compiles its patterns once.
type BranchFilter = schema.BranchFilter
