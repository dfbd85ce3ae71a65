package reconciler

import (
	"errors"
	"fmt"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
)

// PhaseConflict: the environment's namespace exists and belongs to another
// install, app or branch (or to no arbor at all). Nothing is written into it;
// the status names the owner.
const PhaseConflict = "Conflict"

// labelInstall puts the install's identity on every object of the
// environment: arbor reads, adopts, prunes and deletes only its own.
func labelInstall(env *render.Environment, install string) {
	for _, o := range env.Objects {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l[apply.LabelInstall] = install
		o.SetLabels(l)
	}
}

// conflict reports whether err says the environment's namespace, or an
// object in it, belongs to someone else.
func conflict(err error) (*apply.OwnedByOtherError, bool) {
	var o *apply.OwnedByOtherError
	return o, errors.As(err, &o)
}

// foreign says why arbor must not write its record into namespace ns for
// app's environment envID, or "": the cache's copy of the namespace belongs to
// another install or app.
func (r *Reconciler) foreign(ns, app, envID string) string {
	l, ok := r.cache.namespaceLabels(ns)
	if !ok {
		return "" // not seen yet: a namespace this run has just created
	}
	if l[render.LabelManagedBy] != render.ManagedByValue {
		return fmt.Sprintf("namespace %s is not managed by arbor", ns)
	}
	if inst, has := l[apply.LabelInstall]; has && inst != r.opts.Config.Install {
		return fmt.Sprintf("namespace %s belongs to arbor install %q", ns, inst)
	}
	if l[render.LabelApp] != app || (envID != "" && l[render.LabelEnv] != envID) {
		return fmt.Sprintf("namespace %s belongs to %s/%s", ns, l[render.LabelApp], l[render.LabelEnv])
	}
	return ""
}

// ingressAnnotations is the daemon's allow-list of template ingress
// annotations: the config's, else render's default.
func ingressAnnotations(configured []string) []string {
	if len(configured) > 0 {
		return configured
	}
	return render.DefaultIngressAnnotations
}
