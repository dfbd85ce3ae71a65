// Package schema reads and checks a branch's .release.yaml: the Application
// Template, the environment-variables document and the pointer file that names
// them (docs/release-yaml.md).
//
// It loads both forms of .release.yaml and Release's default .release/ paths
// from an fs.FS, keeps the YAML position of every key so that each finding reads
// FILE:LINE:COL: path.to.field: message, applies the embedded JSON Schema
// (release.schema.json) and then the semantic checks. It does no I/O beyond
// the fs.FS it is given.
//
// Two of its parts serve the daemon configuration too, so that both files
// read alike: ParseYAML, the one reader of YAML positions, and Glob, the one
// branch-pattern matcher.
package schema
