package main

import (
	"github.com/spf13/cobra"

	"github.com/arbordev/arbor/internal/repofs"
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
