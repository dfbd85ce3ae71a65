package reconciler

import (
	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/render"
)

// Pod Security Admission's namespace labels (k8s.io/pod-security-admission).
const (
	labelPSAEnforce        = "pod-security.kubernetes.io/enforce"
	labelPSAEnforceVersion = "pod-security.kubernetes.io/enforce-version"
	labelPSAWarn           = "pod-security.kubernetes.io/warn"
	labelPSAAudit          = "pod-security.kubernetes.io/audit"
)

// labelPodSecurity puts the app's Pod Security Standard on the environment's
// Namespace (the first object), so that the API server itself refuses pods
// a branch is not allowed to run: with baseline, no privileged containers,
// host namespaces, hostPath volumes or added capabilities beyond the
// default set. The level is enforced at the cluster's own version of the
// standard; warn and audit use the same level, so that a Deployment whose
// pods would be refused draws a warning when it is applied and an audit
// entry, not only a failing ReplicaSet. The labels are set even for
// privileged, so that a cluster-wide default cannot tighten or loosen what
// the daemon config says.
func labelPodSecurity(env *render.Environment, level string) {
	if len(env.Objects) == 0 || env.Objects[0].GetKind() != "Namespace" {
		return
	}
	if level == "" {
		level = config.DefaultPodSecurity
	}
	ns := env.Objects[0]
	labels := ns.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[labelPSAEnforce] = level
	labels[labelPSAEnforceVersion] = "latest"
	labels[labelPSAWarn] = level
	labels[labelPSAAudit] = level
	ns.SetLabels(labels)
}
