// Package render turns a branch's configuration into the Kubernetes objects of
// its environment (docs/release-yaml.md).
//
// Render is a pure function of its Input: the template, the environment
// context (app, branch, commit, template name, domain, parameters, image
// settings, secrets), the already-loaded imported apps, and the branch's tree
// as an fs.FS for configmap files and kustomize directories. Configmap files
// are read with repofs.ReadFile, so the rules of package repofs (no link out
// of the repository, regular files only, bounded sizes) hold whatever fs.FS
// it is given. A kustomize directory is built on an in-memory copy of only
// what its kustomization references, every path checked and rewritten to a
// local one, every YAML file within the alias budget, within the size and
// time limits of Context.Kustomize (kusttree.go, docs/security.md). Helm
// charts (docs/charts.md) are rendered with the Helm SDK from the tree, or
// from the archives the caller fetched (Input.RemoteCharts), their templates
// rewritten so that time and output stay within Context.Charts' limits
// (chartguard.go); the cluster's version and API versions come in
// Context.Charts too. It does no network or cluster I/O, and the same input
// always gives the same objects, in the same order, with the same names.
package render
