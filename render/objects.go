package render

import (
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
)

// obj is a Kubernetes object under construction, in unstructured form.
type obj = map[string]any

// newObject starts an object of the environment: apiVersion, kind and
// metadata with the common labels, extra labels and the commit annotation.
func (r *renderer) newObject(a *app, apiVersion, kind, name string, extra map[string]string) obj {
	labels := make(map[string]any, len(r.labels)+len(extra)+1)
	for k, v := range r.labels {
		labels[k] = v
	}
	for k, v := range extra {
		labels[k] = v
	}
	commit := r.env.Commit
	if a != nil && a.imported {
		labels[LabelImportedFrom] = a.name
		commit = a.commit
	}
	meta := obj{
		"name":        name,
		"labels":      labels,
		"annotations": map[string]any{AnnotationCommit: commit},
	}
	if kind != "Namespace" {
		meta["namespace"] = r.env.Namespace
	}
	return obj{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
}

// add appends an object to the environment and, when task is not "", records
// that the task owns it.
func (r *renderer) add(o obj, task string) {
	r.objs = append(r.objs, o)
	if task != "" {
		r.env.Tasks[task] = append(r.env.Tasks[task], refOf(o))
	}
}

func refOf(o obj) ObjectRef {
	api := str(o, "apiVersion")
	group := ""
	if i := strings.IndexByte(api, '/'); i >= 0 {
		group = api[:i]
	}
	m, _ := o["metadata"].(obj)
	ns, _ := m["namespace"].(string)
	return ObjectRef{Group: group, Kind: str(o, "kind"), Namespace: ns, Name: objName(o)}
}

func str(o obj, k string) string {
	s, _ := o[k].(string)
	return s
}

func objName(o obj) string {
	m, _ := o["metadata"].(obj)
	s, _ := m["name"].(string)
	return s
}

func objKey(o obj) string {
	r := refOf(o)
	k := r.Kind
	if r.Group != "" {
		k += "." + r.Group
	}
	if r.Namespace != "" {
		return k + "/" + r.Namespace + "/" + r.Name
	}
	return k + "/" + r.Name
}

// stringMap converts a map of strings to the map form unstructured wants.
func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// anyStrings converts a list of strings to []any.
func anyStrings(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// podLabels are the common labels plus one that tells the workload's pods apart.
func (r *renderer) podLabels(key, value string) map[string]any {
	l := stringMap(r.labels)
	l[key] = value
	return l
}

// copyList deep-copies a list shared by several containers or objects, so
// that no two places of the output alias the same map.
func copyList(l []any) []any {
	if l == nil {
		return nil
	}
	return runtime.DeepCopyJSONValue(l).([]any)
}
