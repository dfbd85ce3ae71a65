package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/arbordev/arbor/apply"
)

// deleteOptions are the flags of arbor delete.
type deleteOptions struct {
	envOptions
	namespace string
}

func newDeleteCmd() *cobra.Command {
	o := &deleteOptions{}
	cmd := &cobra.Command{
		Use:   "delete [DIR]",
		Short: "Delete a branch's environment from the cluster",
		Long: `delete removes the environment of one branch of the repository in DIR (default:
the current directory): the objects of its stored inventory and its namespace,
if arbor created that namespace. It waits, up to --timeout, until they are
gone; if finalizers hold them, it names the finalizers and fails. It runs no
teardown workflow.

--namespace deletes the environment in that namespace without rendering DIR
(for a branch whose configuration no longer renders).

Exit status: 0 deleted, 2 error.`,
		Example: `  arbor delete --branch feature/login
  arbor delete --branch feature/login --namespace shop-feature-login-3f2a`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDelete(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), dirArg(args), o)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&o.namespace, "namespace", "", "the environment's namespace (default: rendered from DIR and --branch)")
	return cmd
}

func runDelete(ctx context.Context, stdout, stderr io.Writer, dir string, o *deleteOptions) error {
	s, err := o.connect()
	if err != nil {
		return fail(exitUsage, err)
	}
	ns, name := o.namespace, "namespace "+o.namespace
	var inv apply.Inventory
	if ns == "" {
		env, err := o.render(ctx, stderr, s, dir, true)
		if err != nil {
			return err
		}
		ns, name = env.Namespace, env.App+"@"+env.Branch+" in namespace "+env.Namespace
		if inv, err = s.engine.Inventory(ctx, env.Objects, ns); err != nil {
			return fail(exitUsage, err)
		}
	}
	st, err := readOwnState(ctx, s.cs, ns)
	if err != nil {
		return fail(exitUsage, err)
	}
	inv = append(inv, st.Inventory...)
	cs, err := s.engine.Delete(ctx, inv, apply.DeleteOptions{Namespace: ns, Timeout: o.timeout})
	printChanges(stdout, name, cs)
	if err != nil {
		return fail(exitUsage, fmt.Errorf("%s: %w", name, err))
	}
	return nil
}
