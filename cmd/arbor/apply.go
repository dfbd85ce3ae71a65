package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/state"
	"github.com/arbordev/arbor/workflow"
)

func newApplyCmd() *cobra.Command {
	o := &envOptions{}
	cmd := &cobra.Command{
		Use:   "apply [DIR]",
		Short: "Apply a branch's environment to the cluster once",
		Long: `apply renders the environment of one branch of the repository in DIR (default:
the current directory) and brings the cluster to it once, as the daemon would:
server-side apply of what changed, in kind order; a wait until it is ready;
pruning of the objects of the previous inventory that are no longer rendered;
and the environment's record (branch, commit, inventory) saved in its
namespace. It runs the workflow the daemon would run for the change (setup
for a new environment, a changed configuration or a failed setup; patch
otherwise): jobs such as migrations, services in order. It prints the
change set.

Exit status: 0 applied and ready, 2 error.`,
		Example: `  arbor apply --branch feature/login --commit $(git rev-parse HEAD)
  arbor apply examples/shop --branch main --secrets-from arbor-system/shop-secrets`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApply(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), dirArg(args), o)
		},
	}
	o.register(cmd)
	o.registerApply(cmd)
	return cmd
}

func runApply(ctx context.Context, stdout, stderr io.Writer, dir string, o *envOptions) error {
	s, env, err := o.open(ctx, stderr, dir)
	if err != nil {
		return err
	}
	prev, err := readOwnState(ctx, s.cs, env.Namespace)
	if err != nil {
		return fail(exitUsage, err)
	}
	name := env.App + "@" + env.Branch
	changes, prune, err := applyEnvironment(ctx, s, env, prev, o)
	printChanges(stdout, name+" in namespace "+env.Namespace, changes, prune)
	if err != nil {
		return fail(exitUsage, fmt.Errorf("%s: %w", name, err))
	}
	return nil
}

// applyEnvironment runs the stage the daemon would run for this change
// (workflow.ChooseStage, as on a deploy request: setup for a new
// environment, a changed configuration or a failed setup, else patch), then
// prunes and records. The record is written also when a step fails, with the
// failure and an inventory that still holds everything that may exist, so
// that a later apply prunes it.
func applyEnvironment(ctx context.Context, s *session, env *render.Environment, prev *state.State, o *envOptions) (*apply.ChangeSet, *apply.ChangeSet, error) {
	desired, err := s.engine.Inventory(ctx, env.Objects, env.Namespace)
	if err != nil {
		return nil, nil, err
	}
	last := workflow.Last{Exists: prev.Commit != "", Commit: prev.Commit, ConfigHash: prev.ConfigHash,
		SetupDone: prev.Workflow != render.StageSetup || prev.Outcome != state.OutcomeFailed}
	stage := workflow.ChooseStage(last, env, true).Stage // a request: never "" nor held
	x := &workflow.Executor{Engine: s.engine, RolloutTimeout: o.timeout}
	res, err := x.Run(ctx, workflow.Run{Env: env, Stage: stage, Inventory: prev.Inventory, Diff: true})
	rec := &state.State{
		App: env.App, Branch: env.Branch, Commit: env.Commit, ConfigHash: env.ConfigHash, Template: env.Template,
		Workflow: stage, Outcome: state.OutcomeFailed,
		Inventory: append(append(apply.Inventory{}, prev.Inventory...), desired...),
	}
	var changes, prune *apply.ChangeSet
	if res != nil {
		changes, rec.Outcome = res.Changes, res.Progress.Outcome
	}
	if err == nil {
		prune, err = s.engine.Prune(ctx, prev.Inventory, env.Objects, apply.ApplyOptions{Namespace: env.Namespace})
	}
	if err == nil {
		rec.Inventory = desired
	} else {
		rec.Outcome, rec.Message = state.OutcomeFailed, err.Error()
	}
	if werr := state.Write(ctx, s.cs, env.Namespace, rec); werr != nil && !namespaceMissing(changes) {
		err = errors.Join(err, werr)
	}
	return changes, prune, err
}

// namespaceMissing reports whether the environment's namespace was never
// created, so there is nowhere to record the failure.
func namespaceMissing(cs *apply.ChangeSet) bool {
	if cs == nil {
		return true
	}
	for _, c := range cs.Changes {
		if c.Ref.Kind == "Namespace" && c.Ref.Group == "" {
			return c.Action == apply.Failed || c.Action == apply.Skipped
		}
	}
	return false
}
