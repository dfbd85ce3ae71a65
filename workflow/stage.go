package workflow

import (
	"slices"

	"github.com/arbordev/arbor/render"
)

// Last is what an environment's record says of its last workflow run.
type Last struct {
	// Exists: the environment has a record, i.e. a run was at least attempted.
	// With Exists and no Commit, none has finished yet: a first setup
	// interrupted (arbor stopped, or handed the app to another replica), or
	// failed on an error that is retried; it is run again.
	Exists bool `json:"exists"`
	// Commit, ConfigHash and Imports are what the last run ran: the
	// commit, the configuration hash and the imported apps' commits.
	Commit     string               `json:"commit"`
	ConfigHash string               `json:"configHash"`
	Imports    []render.ImportedApp `json:"imports,omitempty"`
	// SetupDone: the last setup (at ConfigHash) ended without halting.
	// False while a setup has failed: the environment is failed until a
	// setup succeeds.
	SetupDone bool `json:"setupDone"`
}

// Decision is which stage a change calls for.
type Decision struct {
	// Stage is setup, patch, or "" when no workflow is to run.
	Stage string
	// Reason says why, for logs and status.
	Reason string
	// Held: the environment has auto_deploy: false and a change waits for a
	// deploy request.
	Held bool
}

// ChooseStage decides what to run for a rendered environment given its last
// run (docs/release-yaml.md#workflows, #environments): setup for a new environment or a configuration change
// (template, environment variables, parameters, the imports' configuration
// or branch), patch when only code moved (its commit, or an imported app's
// commit). A failed setup is run again on the next change or on request.
// With auto_deploy: false, an existing environment is updated only on
// request (requested), whatever changed. A request with nothing changed
// runs a patch, which re-runs nothing that already succeeded.
func ChooseStage(last Last, env *render.Environment, requested bool) Decision {
	if !last.Exists {
		return Decision{Stage: render.StageSetup, Reason: "new environment"}
	}
	if last.Commit == "" {
		return Decision{Stage: render.StageSetup, Reason: "no run finished yet"}
	}
	configChanged := last.ConfigHash != env.ConfigHash
	codeChanged := last.Commit != env.Commit || importsMoved(last.Imports, env.Imports)
	changed := configChanged || codeChanged
	switch {
	case !env.AutoDeploy && !requested && changed:
		return Decision{Reason: "auto_deploy is false: waiting for a deploy request", Held: true}
	case !last.SetupDone && (changed || requested):
		return Decision{Stage: render.StageSetup, Reason: "retrying the failed setup"}
	case !last.SetupDone:
		return Decision{Reason: "setup failed: waiting for a change or a deploy request"}
	case configChanged:
		return Decision{Stage: render.StageSetup, Reason: "configuration changed"}
	case codeChanged:
		return Decision{Stage: render.StagePatch, Reason: "code changed"}
	case requested:
		return Decision{Stage: render.StagePatch, Reason: "deploy requested"}
	}
	return Decision{Reason: "up to date"}
}

// importsMoved reports whether an imported app moved to another commit.
func importsMoved(last, now []render.ImportedApp) bool {
	return !slices.Equal(last, now)
}
