package render

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// kindKey names a kind by API group ("" for the core group) and kind.
type kindKey struct{ Group, Kind string }

// scopeOf reports whether objects of the kind of apiVersion/kind live in a
// namespace, from builtinNamespaced: Kubernetes' own list of its built-in
// kinds, read from a real kube-apiserver's discovery (see scope_table.go).
// known is false for every other kind (custom resources, or a kind written
// with the wrong group): render cannot tell their scope without a cluster,
// and the daemon's apply engine decides it from the cluster's discovery.
func scopeOf(apiVersion, kind string) (namespaced, known bool) {
	group := ""
	if i := strings.LastIndexByte(apiVersion, '/'); i >= 0 {
		group = apiVersion[:i]
	}
	namespaced, known = builtinNamespaced[kindKey{group, kind}]
	return namespaced, known
}

// unknownScope is the warning for an object whose kind is not built in. The
// names come from the branch, so they are quoted.
func unknownScope(id, apiVersion, kind string) string {
	return fmt.Sprintf("%q: the scope of kind %q (apiVersion %q) could not be checked: it is not a built-in kind of Kubernetes %s; "+
		"it is rendered into the environment's namespace, and a cluster where it is cluster-scoped refuses it at apply",
		id, kind, apiVersion, builtinScopesVersion)
}

// clusterScoped reports whether u is of a built-in cluster-scoped kind. A
// kind render does not know is taken as namespaced, with a warning in the
// Environment.
func (r *renderer) clusterScoped(u *unstructured.Unstructured) bool {
	namespaced, known := scopeOf(u.GetAPIVersion(), u.GetKind())
	if !known {
		w := unknownScope(u.GetKind()+"/"+u.GetName(), u.GetAPIVersion(), u.GetKind())
		if !slices.Contains(r.env.Warnings, w) {
			r.env.Warnings = append(r.env.Warnings, w)
		}
	}
	return known && !namespaced
}
