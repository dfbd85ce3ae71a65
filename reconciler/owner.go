package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/render"
)

// PhaseConflict: the environment's namespace exists and belongs to another
// install, app or branch (or to no arbor at all). Nothing is written into it;
// the status names the owner.
const PhaseConflict = "Conflict"

// conflict reports whether err says the environment's namespace, or an
// object in it, belongs to someone else.
func conflict(err error) (*apply.OwnedByOtherError, bool) {
	var o *apply.OwnedByOtherError
	return o, errors.As(err, &o)
}

// foreign refuses writing the record of app's environment envID into
// namespace ns when the cache's copy of the namespace belongs to another
// install, app or environment (apply.CheckOwner, the engine's own rule).
func (r *Reconciler) foreign(ns, app, envID string) error {
	l, ok := r.cache.namespaceLabels(ns)
	if !ok {
		return nil // not seen yet: a namespace this run has just created
	}
	want := apply.Owner{apply.LabelInstall: r.opts.Config.Install, apply.LabelApp: app}
	if envID != "" {
		want[apply.LabelEnv] = envID
	}
	return apply.CheckOwner(apply.ObjectRef{Kind: "Namespace", Name: ns}, l, want)
}

// ingressAnnotations is the daemon's allow-list of template ingress
// annotations: the config's, else render's default.
func ingressAnnotations(configured []string) []string {
	if len(configured) > 0 {
		return configured
	}
	return render.DefaultIngressAnnotations
}

// hostHeld says which environment already serves one of env's hosts, or "":
// two environments never claim one host. The one that has it keeps it (its
// record names the host); the other shows Conflict until the holder lets go.
// Environments of other installs are not seen.
func (r *Reconciler) hostHeld(env *render.Environment) string {
	mine := map[string]bool{}
	for _, u := range env.URLs {
		if h := hostOf(u.URL); h != "" {
			mine[h] = true
		}
	}
	if len(mine) == 0 {
		return ""
	}
	for _, st := range r.cache.allStates() {
		if st.Namespace == env.Namespace {
			continue
		}
		for _, u := range st.URLs {
			if h := hostOf(u.URL); mine[h] {
				return fmt.Sprintf("host %s is served by %s@%s (namespace %s)", h, st.App, st.Branch, st.Namespace)
			}
		}
	}
	return ""
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// namespaceFor is the namespace of app@branch: the one its environment has
// when it exists (a name never changes under an environment), else
// namespaceName.
func (r *Reconciler) namespaceFor(app, branch string) string {
	if rec := r.cache.env(app, branch); rec != nil && rec.Namespace != "" {
		return rec.Namespace
	}
	return namespaceName(r.opts.Config.Apps, app, branch)
}

// namespaceName is the daemon's naming rule: "<app>-<env id>", as `arbor
// render` names it, unless another app of the config could give the same
// name. "<app>-<env id>" of app shop on branch api-main equals that of app
// shop-api on main: whenever an app named "<app>-<x>" exists and the env id
// starts with "<x>-", the branch's namespace gets a hash of app and branch
// ("shop-api-main-1a2b3c"). Only the app with the shorter name needs it: the
// other's names are the plain ones.
func namespaceName(apps []config.App, app, branch string) string {
	envID := render.EnvID(branch)
	for _, other := range apps {
		x, ok := strings.CutPrefix(other.Name, app+"-")
		if ok && x != "" && strings.HasPrefix(envID, x+"-") {
			sum := sha256.Sum256([]byte(app + "\x00" + branch))
			return render.Namespace(app, envID+"-"+hex.EncodeToString(sum[:3]))
		}
	}
	return render.Namespace(app, envID)
}
