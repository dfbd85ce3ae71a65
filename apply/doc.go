// Package apply is arbor's apply engine: it brings a set of Kubernetes objects
// into the cluster with server-side apply and reports what changed.
//
// The engine knows nothing of git or of .release.yaml. It is one struct,
// Engine, with verb methods — Diff, Apply, Wait, Prune and Delete — that take
// (ctx, objects, options) and return a plain ChangeSet; callers turn that into
// status, events and metrics.
//
// Safety is built in rather than left to callers: namespaced objects are
// confined to the environment namespace, cluster-scoped kinds and foreign
// namespaces are refused unless Options allow them, and nothing without the
// label app.kubernetes.io/managed-by=arbor is ever deleted or taken over.
// Secret values are masked in every diff the engine produces.
package apply
