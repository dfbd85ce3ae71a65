package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/internal/httpjson"
)

// The resource an action is authorized on: RBAC rules name it as
//
//	apiGroups: ["arbor.dev"], resources: ["environments"], verbs: ["deploy"],
//	resourceNames: ["APP/ENV"]   # optional: one environment only
//
// in a Role in arbor's namespace (or a ClusterRole).
const (
	APIGroup         = "arbor.dev"
	ResourceEnvs     = "environments"
	maxBearerLength  = 16 << 10
	authHeaderPrefix = "Bearer "
)

// Authorizer guards arbor's actions the Kubernetes way: the caller's bearer
// token is checked with a TokenReview, and the action with a
// SubjectAccessReview on a verb of arbor's, so the cluster's RBAC says who may
// do what. It also refuses requests a browser sends on another site's behalf.
type Authorizer struct {
	// Kube creates the reviews: arbor's ServiceAccount needs create on
	// tokenreviews and subjectaccessreviews.
	Kube kubernetes.Interface
	// Namespace is where the reviewed resource lives: arbor's own namespace.
	Namespace string
	// Audiences, when set, are the token audiences accepted (default: the API
	// server's).
	Audiences []string
	// CacheTTL is how long a review's answer (allowed or refused) is kept
	// for the same token, verb and environment: 10s when zero, none when
	// negative. Failures to ask the API server are never kept.
	CacheTTL time.Duration

	decisions decisionCache
	now       func() time.Time // time.Now; tests set it
}

// Caller is who made an authorized request.
type Caller struct {
	User   string
	Groups []string
}

type callerKey struct{}

// CallerOf returns who made the request whose context ctx is, when Require
// authorized it, or nil.
func CallerOf(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// Require returns h guarded by verb on the environment named by the request's
// {app} and {env} path values (the resource name APP/ENV; none without
// them, as for a list): 401 without a valid token, 403 when RBAC does
// not allow it or the request is cross-site.
func (a *Authorizer) Require(verb string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a == nil || a.Kube == nil {
			deny(w, http.StatusUnauthorized, "actions are disabled: the daemon has no authenticator")
			return
		}
		if msg := crossSite(r); msg != "" {
			deny(w, http.StatusForbidden, msg)
			return
		}
		name := ""
		if app, env := r.PathValue("app"), r.PathValue("env"); app != "" && env != "" {
			name = app + "/" + env
		}
		c, err := a.Authorize(r.Context(), r, verb, name)
		if err != nil {
			var d *Denied
			if errors.As(err, &d) {
				deny(w, d.Status, d.Reason)
				return
			}
			deny(w, http.StatusServiceUnavailable, "cannot check the request with the API server: "+err.Error())
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// Denied is a refusal: Status is 401 or 403.
type Denied struct {
	Status int
	Reason string
}

func (d *Denied) Error() string { return d.Reason }

// Authorize checks r's bearer token and whether its user may verb the
// environment name ("APP/ENV"). A refusal is a *Denied; any other error means
// the API server could not be asked.
func (a *Authorizer) Authorize(ctx context.Context, r *http.Request, verb, name string) (*Caller, error) {
	token, ok := bearer(r)
	if !ok {
		return nil, &Denied{Status: http.StatusUnauthorized, Reason: "a bearer token is required (Authorization: Bearer TOKEN)"}
	}
	ttl := a.CacheTTL
	if ttl == 0 {
		ttl = defaultDecisionTTL
	}
	if ttl < 0 {
		return a.review(ctx, token, verb, name)
	}
	now := time.Now()
	if a.now != nil {
		now = a.now()
	}
	key := decisionKey{token: sha256.Sum256([]byte(token)), verb: verb, name: name}
	if d, ok := a.decisions.get(key, now); ok {
		return d.answer()
	}
	c, err := a.review(ctx, token, verb, name)
	var denied *Denied
	if err == nil || errors.As(err, &denied) {
		a.decisions.put(key, decision{caller: c, denied: denied, until: now.Add(ttl)}, now)
	}
	return c, err
}

// review asks the API server who token is and whether they may verb the
// environment name.
func (a *Authorizer) review(ctx context.Context, token, verb, name string) (*Caller, error) {
	tr, err := a.Kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: a.Audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token review: %w", err)
	}
	if !tr.Status.Authenticated {
		return nil, &Denied{Status: http.StatusUnauthorized, Reason: "the token is not valid"}
	}
	u := tr.Status.User
	extra := map[string]authzv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	sar, err := a.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
		Spec: authzv1.SubjectAccessReviewSpec{
			User: u.Username, Groups: u.Groups, UID: u.UID, Extra: extra,
			ResourceAttributes: &authzv1.ResourceAttributes{
				Namespace: a.Namespace, Group: APIGroup, Resource: ResourceEnvs, Verb: verb, Name: name,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("access review: %w", err)
	}
	if !sar.Status.Allowed {
		what := fmt.Sprintf("%s %q", ResourceEnvs, name)
		if name == "" {
			what = ResourceEnvs
		}
		return nil, &Denied{Status: http.StatusForbidden, Reason: fmt.Sprintf(
			"%s may not %s %s in namespace %s (RBAC: apiGroups [%s], resources [%s], verbs [%s])",
			u.Username, verb, what, a.Namespace, APIGroup, ResourceEnvs, verb)}
	}
	return &Caller{User: u.Username, Groups: u.Groups}, nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) <= len(authHeaderPrefix) || len(h) > maxBearerLength || !strings.EqualFold(h[:len(authHeaderPrefix)], authHeaderPrefix) {
		return "", false
	}
	t := strings.TrimSpace(h[len(authHeaderPrefix):])
	return t, t != ""
}

// crossSite says why r looks sent by a browser on another site's behalf, or
// "". A bearer token already keeps a browser from acting for a user (it never
// attaches one by itself), so this is a second wall: it also stops a page
// that learned a token from using it through the victim's network position.
func crossSite(r *http.Request) string {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return "cross-site request refused"
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return "cross-origin request refused"
		}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return "an action's body, if any, must be application/json"
		}
	}
	return ""
}

func deny(w http.ResponseWriter, status int, reason string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="arbor"`)
	}
	httpjson.Write(w, status, map[string]string{"error": reason})
}
