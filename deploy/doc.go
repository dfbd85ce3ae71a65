// Package deploy holds arbor's in-cluster install: the kustomize base (base/),
// an example overlay (overlays/example/) and the container image build
// (Dockerfile). The Go code here is only its tests: the manifests' own checks,
// a server-side dry-run of every object on the local cluster, and the proof that
// arbor's ServiceAccount can do its job and nothing more (docs/security.md).
package deploy
