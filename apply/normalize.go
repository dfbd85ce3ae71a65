package apply

import (
	"fmt"
	"reflect"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// generatedMeta are metadata fields the server writes; they never describe
// what arbor wants, so they are left out of comparisons and diffs.
var generatedMeta = []string{
	"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink",
}

// generatedAnnotations are annotations written by tools and controllers.
var generatedAnnotations = []string{
	"kubectl.kubernetes.io/last-applied-configuration",
	"deployment.kubernetes.io/revision",
}

// Masks written in place of Secret values in diffs.
const (
	maskSame    = "(hidden)"
	maskChanged = "(hidden, changed)"
)

// normalize returns a copy of obj without status and server-generated fields,
// so that two reads of an unchanged object compare equal. A nil obj gives nil.
func normalize(obj *unstructured.Unstructured) map[string]any {
	if obj == nil {
		return nil
	}
	o := obj.DeepCopy().Object
	delete(o, "status")
	md, _ := o["metadata"].(map[string]any)
	if md == nil {
		return o
	}
	for _, k := range generatedMeta {
		delete(md, k)
	}
	if ann, ok := md["annotations"].(map[string]any); ok {
		for _, k := range generatedAnnotations {
			delete(ann, k)
		}
		if len(ann) == 0 {
			delete(md, "annotations")
		}
	}
	return o
}

// isSecret reports whether o is a core/v1 Secret.
func isSecret(o map[string]any) bool {
	kind, _ := o["kind"].(string)
	api, _ := o["apiVersion"].(string)
	return kind == "Secret" && api == "v1"
}

// maskSecrets replaces every value under data and stringData of Secrets with a
// mask, in place. A value that differs between before and after is masked as
// changed on the after side, so a diff shows which key changed and never what
// it holds. Either side may be nil.
func maskSecrets(before, after map[string]any) {
	if (before != nil && !isSecret(before)) || (after != nil && !isSecret(after)) || (before == nil && after == nil) {
		return
	}
	for _, field := range []string{"data", "stringData"} {
		var b, a map[string]any
		if before != nil {
			b, _ = before[field].(map[string]any)
		}
		if after != nil {
			a, _ = after[field].(map[string]any)
		}
		for k, av := range a {
			bv, inBefore := b[k]
			if inBefore && !reflect.DeepEqual(av, bv) {
				a[k] = maskChanged
			} else {
				a[k] = maskSame
			}
		}
		for k := range b {
			b[k] = maskSame
		}
	}
}

// changedFields lists the leaf paths where before and after differ, sorted.
func changedFields(before, after any) []string {
	var out []string
	walkDiff("", before, after, &out)
	sort.Strings(out)
	return out
}

func walkDiff(path string, before, after any, out *[]string) {
	bm, bok := before.(map[string]any)
	am, aok := after.(map[string]any)
	if bok && aok {
		keys := map[string]bool{}
		for k := range bm {
			keys[k] = true
		}
		for k := range am {
			keys[k] = true
		}
		for k := range keys {
			walkDiff(path+"."+k, bm[k], am[k], out)
		}
		return
	}
	bl, bok := before.([]any)
	al, aok := after.([]any)
	if bok && aok && len(bl) == len(al) {
		for i := range bl {
			walkDiff(fmt.Sprintf("%s[%d]", path, i), bl[i], al[i], out)
		}
		return
	}
	if !reflect.DeepEqual(before, after) {
		if path == "" {
			path = "."
		}
		*out = append(*out, path)
	}
}

// toYAML renders an object for a diff; nil renders as no lines.
func toYAML(o map[string]any) string {
	if o == nil {
		return ""
	}
	b, err := yaml.Marshal(o)
	if err != nil {
		return fmt.Sprintf("# cannot render: %v\n", err)
	}
	return string(b)
}

// objectDiff returns the unified diff of two normalized, masked objects.
func objectDiff(ref ObjectRef, before, after map[string]any) string {
	from, to := "live/"+ref.String(), "desired/"+ref.String()
	if before == nil {
		from = "/dev/null"
	}
	if after == nil {
		to = "/dev/null"
	}
	return unifiedDiff(from, to, toYAML(before), toYAML(after), 3)
}

// project returns the parts of v that shape also has: map keys shape sets,
// list items by position. It keeps a diff to the fields a desired object
// names, leaving out what the server defaulted.
func project(v, shape any) any {
	switch sh := shape.(type) {
	case map[string]any:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(sh))
		for k, sv := range sh {
			if mv, ok := m[k]; ok {
				out[k] = project(mv, sv)
			}
		}
		return out
	case []any:
		l, ok := v.([]any)
		if !ok {
			return v
		}
		out := make([]any, len(l))
		for i := range l {
			if i < len(sh) {
				out[i] = project(l[i], sh[i])
			} else {
				out[i] = l[i]
			}
		}
		return out
	}
	return v
}
