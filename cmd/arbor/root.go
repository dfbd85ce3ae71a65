package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes shared by the subcommands: validate and diff use 1 for "the answer
// is no" (invalid, has changes), 2 for a usage or operational error.
const (
	exitOK    = 0
	exitNo    = 1
	exitUsage = 2
)

// exitError carries an exit code out of a subcommand. A nil err with a non-zero
// code exits quietly (the command already printed what it found).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return "exit status"
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// fail wraps err with an exit code.
func fail(code int, err error) error { return &exitError{code: code, err: err} }

// clusterFlags are kubectl's flags for choosing a cluster.
type clusterFlags struct {
	kubeconfig string
	context    string
}

func (c *clusterFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	cmd.Flags().StringVar(&c.context, "context", "", "the kubeconfig context to use")
}

// registerOn adds the cluster flags to a flag set (a command's persistent flags).
func (c *clusterFlags) registerOn(fs *pflag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	fs.StringVar(&c.context, "context", "", "the kubeconfig context to use")
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "arbor",
		Short: "An environment on Kubernetes for every branch of a repository",
		Long: `arbor turns every branch of a repository into a live environment on Kubernetes,
from the .release.yaml committed to that repository.

Offline:   validate, render, init
Images:    build
Cluster:   diff, apply, delete
Daemon:    run, deploy, env`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newRunCmd(),
		newValidateCmd(),
		newInitCmd(),
		newDeployCmd(),
		newEnvCmd(),
		newRenderCmd(),
		newBuildCmd(),
		newDiffCmd(),
		newApplyCmd(),
		newDeleteCmd(),
	)
	return root
}
