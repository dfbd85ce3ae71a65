package schema

import (
	"fmt"
	"sort"
	"strings"
)

// acceptedTopLevel are Release keys arbor accepts without acting on them
// (docs/release-yaml.md#top-level-keys): each gets a warning that names it, never an error.
var acceptedTopLevel = []string{"infrastructure", "development_environment", "mode", "execution_type"}

// acceptedKeyWarnings warns about the accepted-but-unused keys present at the
// top of the document, and about those nested in services, environment
// templates and app imports.
func acceptedKeyWarnings(doc *Document, prefix string, topLevel []string) Findings {
	top, ok := doc.value.(map[string]any)
	if !ok {
		return nil
	}
	var out Findings
	warn := func(field, msg string) {
		out = append(out, doc.warning(joinField(prefix, field), msg))
	}
	for _, k := range topLevel {
		if _, ok := top[k]; ok {
			warn(k, fmt.Sprintf("%s is accepted but not acted on by arbor", k))
		}
	}
	eachItem(top, "services", func(i int, svc map[string]any) {
		base := fmt.Sprintf("services[%d]", i)
		if b, _ := svc["static"].(bool); b {
			warn(base+".static", "static-site services (static: true) are accepted but not deployed by arbor")
		}
		for _, k := range sortedKeys(svc) {
			if strings.HasPrefix(k, "build_") {
				warn(base+"."+k, fmt.Sprintf("%s (static-site build) is accepted but not acted on by arbor", k))
			}
		}
	})
	eachItem(top, "environment_templates", func(i int, et map[string]any) {
		if _, ok := et["datasets"]; ok {
			warn(fmt.Sprintf("environment_templates[%d].datasets", i), "datasets is accepted but not acted on by arbor")
		}
	})
	eachItem(top, "app_imports", func(i int, imp map[string]any) {
		if _, ok := imp["pull_request_labels"]; ok {
			warn(fmt.Sprintf("app_imports[%d].pull_request_labels", i),
				"pull_request_labels is accepted but not acted on by arbor: the app is imported into every environment")
		}
	})
	return out
}

// eachItem calls fn for every mapping in the list top[key].
func eachItem(top map[string]any, key string, fn func(int, map[string]any)) {
	list, _ := top[key].([]any)
	for i, item := range list {
		if m, ok := item.(map[string]any); ok {
			fn(i, m)
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
