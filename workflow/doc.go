// Package workflow carries the lifecycle of an environment beyond a plain
// apply (docs/release-yaml.md: workflows, environments, app imports): it runs one stage of a rendered environment — setup,
// patch, teardown or another named workflow — step by step through the apply
// engine, reporting each task's progress; it decides which stage a change
// calls for; it chooses the branch of each imported app and indexes which
// environments import which branch; it decides when an environment has
// expired; and it records the API's requests on an environment's namespace
// (deploy, a later expiry, delete) for the leader to act on.
//
// The package knows nothing of git: callers (the daemon, and `arbor apply`,
// which runs the stage the daemon would) give it rendered environments,
// branch listings and commit times.
package workflow
