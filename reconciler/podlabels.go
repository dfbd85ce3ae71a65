package reconciler

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
)

// podWatchLabels are the labels the diagnostics' watches select on
// (diagnostics.go): the install's label, and the env label's presence.
// render puts them on every object and on the pods of arbor's own services
// and jobs; labelPodTemplates puts them on the pods of a chart's or
// kustomize directory's workloads too.
var podWatchLabels = []string{apply.LabelInstall, render.LabelApp, render.LabelEnv}

// labelPodTemplates gives the pod template of every Deployment,
// StatefulSet, DaemonSet and ReplicaSet of the environment (a chart's or
// kustomize directory's: arbor's own have them already) the install, app
// and env labels of the workload itself, so that its pods show in the
// diagnostics' watch, which selects on them. Only arbor's own label keys
// are set: a chart's managed-by or selector labels are left as they are, so
// that no selector stops matching. Jobs are left out: a Job's template
// cannot change, and arbor would recreate (run again) a chart's Job whose
// template gained a label.
func labelPodTemplates(env *render.Environment) {
	for _, o := range env.Objects {
		gk := o.GroupVersionKind().GroupKind()
		if gk.Group != "apps" || (gk.Kind != "Deployment" && gk.Kind != "StatefulSet" && gk.Kind != "DaemonSet" && gk.Kind != "ReplicaSet") {
			continue
		}
		own := o.GetLabels()
		if own[render.LabelEnv] == "" {
			continue // not labelled as the environment's: nothing to copy
		}
		tl, _, err := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
		if err != nil {
			continue // a malformed template: the API server says why on apply
		}
		if tl == nil {
			tl = map[string]string{}
		}
		changed := false
		for _, k := range podWatchLabels {
			if v, ok := own[k]; ok && tl[k] != v {
				tl[k], changed = v, true
			}
		}
		if changed {
			_ = unstructured.SetNestedStringMap(o.Object, tl, "spec", "template", "metadata", "labels")
		}
	}
}
