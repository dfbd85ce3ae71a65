package apply

import (
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Rendered is one environment's objects as rendered, with what names it:
// its namespace and env id.
type Rendered struct {
	Objects   []*unstructured.Unstructured
	Namespace string
	EnvID     string
}

// minEnvIDToken is the shortest env id CompareEnvironments writes as
// ${env_id}: a shorter one would match too much that is not the id.
const minEnvIDToken = 3

// CompareEnvironments returns the unified diff of two rendered environments
// (what head changes against base: a pull request's environment against the
// tracking branch's), "" when they match. Objects pair up by group, kind and
// name; in both, the environment's own namespace and env id are written as
// ${namespace} and ${env_id}, so that only what the change does shows.
// Secret values are masked as in Diff: a changed key shows as changed,
// never its value.
func CompareEnvironments(base, head Rendered) string {
	b, h := byName(base), byName(head)
	keys := make([]string, 0, len(b)+len(h))
	for k := range b {
		keys = append(keys, k)
	}
	for k := range h {
		if _, ok := b[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out strings.Builder
	for _, k := range keys {
		before, after := normalize(b[k]), normalize(h[k])
		maskSecrets(before, after)
		dropBookkeeping(before)
		dropBookkeeping(after)
		from, to := "base/"+k, "head/"+k
		if before == nil {
			from = "/dev/null"
		}
		if after == nil {
			to = "/dev/null"
		}
		out.WriteString(unifiedDiff(from, to, anonymize(toYAML(before), base), anonymize(toYAML(after), head), 3))
	}
	return out.String()
}

// byName indexes objects by group, kind and name (not namespace: the two
// environments' namespaces differ).
func byName(r Rendered) map[string]*unstructured.Unstructured {
	out := make(map[string]*unstructured.Unstructured, len(r.Objects))
	for _, o := range r.Objects {
		ref := RefOf(o)
		k := ref.Kind
		if ref.Group != "" {
			k += "." + ref.Group
		}
		if ref.Kind == "Namespace" && ref.Group == "" {
			out[k] = o // the one namespace of each environment
			continue
		}
		out[k+"/"+ref.Name] = o
	}
	return out
}

// anonymize writes the environment's namespace and env id (as a whole
// token: not inside a longer word) as placeholders.
func anonymize(text string, r Rendered) string {
	if r.Namespace != "" {
		text = strings.ReplaceAll(text, r.Namespace, "${namespace}")
	}
	if len(r.EnvID) >= minEnvIDToken {
		re := regexp.MustCompile(`(^|[^a-z0-9])` + regexp.QuoteMeta(r.EnvID) + `($|[^a-z0-9])`)
		// Twice: adjacent matches share their separator.
		for range 2 {
			text = re.ReplaceAllString(text, "${1}$${env_id}${2}")
		}
	}
	return text
}

// bookkeepingPrefix marks the annotations arbor writes about a render (its
// commit, configuration hash, branch, template): they differ between any two
// environments and say nothing of what a change does.
const bookkeepingPrefix = "arbor.dev/"

// dropBookkeeping removes arbor's own annotations, and its env label, from
// every object and pod template in o, in place.
func dropBookkeeping(o any) {
	switch v := o.(type) {
	case map[string]any:
		for k, child := range v {
			m, isMap := child.(map[string]any)
			switch {
			case k == "annotations" && isMap:
				for ak := range m {
					if strings.HasPrefix(ak, bookkeepingPrefix) {
						delete(m, ak)
					}
				}
				if len(m) == 0 {
					delete(v, k)
				}
			case k == "labels" && isMap:
				delete(m, LabelEnv)
			default:
				dropBookkeeping(child)
			}
		}
	case []any:
		for _, child := range v {
			dropBookkeeping(child)
		}
	}
}
