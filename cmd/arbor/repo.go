package main

import (
	"github.com/spf13/cobra"

	"github.com/arbordev/arbor/internal/repofs"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// openRepo opens a repository directory the one way every command reads
// one: through repofs.Dir, so that no read leaves the directory, follows a
// link out of it, blocks on a named pipe or reads an unbounded file.
func openRepo(dir string) (*repofs.Dir, error) {
	return repofs.OpenDir(dir, 0)
}

// registerMaxConfig adds --max-config-size, the largest configuration file
// read (schema.LoadOptions.MaxFileSize).
func registerMaxConfig(cmd *cobra.Command, p *int64) {
	cmd.Flags().Int64Var(p, "max-config-size", schema.DefaultMaxFileSize,
		"the largest configuration file (.release.yaml, template, env vars, compose) read, in bytes")
}

// registerKustomize adds the flags bounding kustomize builds
// (render.KustomizeLimits, docs/security.md#kustomize): what one render may
// read per file and in total, and how long one build may run.
func registerKustomize(cmd *cobra.Command, l *render.KustomizeLimits) {
	f := cmd.Flags()
	f.Int64Var(&l.MaxFileBytes, "kustomize-max-file-size", render.DefaultKustomizeMaxFileBytes,
		"the largest file a kustomization may read, in bytes")
	f.Int64Var(&l.MaxTotalBytes, "kustomize-max-total-size", render.DefaultKustomizeMaxTotalBytes,
		"the most bytes the kustomize directories of one render may read in total")
	f.DurationVar(&l.Timeout, "kustomize-timeout", render.DefaultKustomizeTimeout,
		"how long one kustomize build may run")
}
