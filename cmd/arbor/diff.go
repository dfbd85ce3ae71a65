package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/arbordev/arbor/apply"
)

func newDiffCmd() *cobra.Command {
	o := &envOptions{}
	cmd := &cobra.Command{
		Use:   "diff [DIR]",
		Short: "Show what apply would change in a branch's environment",
		Long: `diff renders the environment of one branch of the repository in DIR (default:
the current directory) and compares it with the cluster: a server-side apply
dry-run of every object, and the objects of the environment's stored inventory
that apply would prune. Secret values are never shown.

Exit status: 0 no changes, 1 changes, 2 error.`,
		Example: `  arbor diff --branch feature/login
  arbor diff examples/shop --branch main --secrets-from arbor-system/shop-secrets --context kind-dev`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), dirArg(args), o)
		},
	}
	o.register(cmd)
	o.registerApply(cmd)
	return cmd
}

func runDiff(ctx context.Context, stdout, stderr io.Writer, dir string, o *envOptions) error {
	s, env, err := o.open(ctx, stderr, dir)
	if err != nil {
		return err
	}
	cs, err := s.engine.Diff(ctx, env.Objects, apply.ApplyOptions{Namespace: env.Namespace})
	if cs != nil {
		fmt.Fprint(stdout, cs.UnifiedDiff())
	}
	if err != nil {
		return fail(exitUsage, err)
	}
	prune, err := prunePreview(ctx, s, env.Namespace, cs)
	if err != nil {
		return fail(exitUsage, err)
	}
	printChanges(stderr, env.App+"@"+env.Branch+" in namespace "+env.Namespace+" would have", cs, prune)
	if cs.Changed() || prune.Changed() {
		return fail(exitNo, nil)
	}
	return nil
}

// prunePreview lists, as Deleted, the objects of the stored inventory that
// are not in the desired set. It reads; it deletes nothing.
func prunePreview(ctx context.Context, s *session, ns string, desired *apply.ChangeSet) (*apply.ChangeSet, error) {
	st, err := readState(ctx, s.cs, ns)
	if err != nil {
		return nil, err
	}
	keep := map[apply.ObjectRef]bool{}
	for _, c := range desired.Changes {
		keep[c.Ref] = true
	}
	out := &apply.ChangeSet{}
	for _, r := range st.Inventory.Sorted() {
		if !keep[r] {
			out.Changes = append(out.Changes, apply.Change{Ref: r, Action: apply.Deleted, Reason: "no longer rendered (pruned if arbor manages it)"})
		}
	}
	return out, nil
}
