package deploy

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// renderedKind is a kind arbor writes into an environment's namespace.
type renderedKind struct{ group, resource, kind string }

// renderedKinds are the kinds arbor writes into environments: what render/
// generates (docs/release-yaml.md: services, jobs, routing) and the StatefulSets kustomize directories may hold,
// which the daemon's watch cache follows (reconciler/cache.go). The ClusterRole
// and the admission policy must cover exactly these, plus namespaces.
var renderedKinds = []renderedKind{
	{"", "configmaps", "ConfigMap"},
	{"", "secrets", "Secret"},
	{"", "services", "Service"},
	{"", "serviceaccounts", "ServiceAccount"},
	{"", "persistentvolumeclaims", "PersistentVolumeClaim"},
	{"", "resourcequotas", "ResourceQuota"}, // the cost guards of the daemon config
	{"", "limitranges", "LimitRange"},
	{"apps", "deployments", "Deployment"},
	{"apps", "statefulsets", "StatefulSet"}, // from kustomize directories; watched by the daemon
	{"batch", "jobs", "Job"},
	{"batch", "cronjobs", "CronJob"},
	{"autoscaling", "horizontalpodautoscalers", "HorizontalPodAutoscaler"},
	{"networking.k8s.io", "ingresses", "Ingress"},
}

// secretReaderBinding is the RoleBinding arbor applies in each environment
// namespace to read its Secrets there (reconciler/secretaccess.go).
var secretReaderBinding = renderedKind{"rbac.authorization.k8s.io", "rolebindings", "RoleBinding"}

// manageVerbs are what arbor does to its own objects: server-side apply (patch,
// and create when the object is new), delete, and read through its watch cache.
var manageVerbs = []string{"get", "list", "watch", "create", "patch", "delete"}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	var out T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out); err != nil {
		t.Fatalf("%s/%s: %v", u.GetKind(), u.GetName(), err)
	}
	return &out
}

// grants flattens RBAC rules to "group/resource:verb" (with "[name]" when limited by name).
func grants(t *testing.T, rules []rbacv1.PolicyRule) []string {
	t.Helper()
	var out []string
	for _, r := range rules {
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %v grants non-resource URLs", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if g == "*" || res == "*" || v == "*" || strings.Contains(res, "*") {
						t.Errorf("rule %v has a wildcard", r)
					}
					s := g + "/" + res + ":" + v
					if len(r.ResourceNames) > 0 {
						s += "[" + strings.Join(r.ResourceNames, ",") + "]"
					}
					out = append(out, s)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestClusterRoleGrantsExactlyWhatArborNeeds(t *testing.T) {
	objs := build(t, dirInstall)
	cr := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "arbor"))
	var want []string
	for _, k := range append(renderedKinds, renderedKind{"", "namespaces", "Namespace"}, secretReaderBinding) {
		verbs := manageVerbs
		if k.kind == "Secret" {
			verbs = []string{"create", "patch", "delete"} // read only where bound: no get, list or watch cluster-wide
		}
		for _, v := range verbs {
			want = append(want, k.group+"/"+k.resource+":"+v)
		}
	}
	want = append(want, "rbac.authorization.k8s.io/clusterroles:bind[arbor-environment-secrets]")
	for _, v := range []string{"get", "create", "patch", "delete"} {
		want = append(want, "networking.k8s.io/networkpolicies:"+v, "discovery.k8s.io/endpointslices:"+v)
	}
	want = append(want, "/events:create", "/events:patch", "events.k8s.io/events:create", "events.k8s.io/events:patch")
	want = append(want, "/pods:list", "/pods:watch") // diagnostics: read only; logs only where bound
	want = append(want, "authentication.k8s.io/tokenreviews:create", "authorization.k8s.io/subjectaccessreviews:create")
	sort.Strings(want)
	if got := grants(t, cr.Rules); !slices.Equal(got, want) {
		t.Errorf("ClusterRole arbor grants\n  %v\nwant exactly\n  %v\n(a change here needs docs/security.md updated too)", got, want)
	}
	crb := convert[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", "arbor"))
	wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: saName, Namespace: namespace}
	if crb.RoleRef.Name != "arbor" || crb.RoleRef.Kind != "ClusterRole" || len(crb.Subjects) != 1 || crb.Subjects[0] != wantSubject {
		t.Errorf("ClusterRoleBinding arbor binds %v to %v, want ClusterRole arbor to %v", crb.RoleRef, crb.Subjects, wantSubject)
	}
}

// TestEnvironmentRoleReadsSecretsAndLogs: what arbor binds in each
// environment namespace reads Secrets and pod logs, and nothing else.
func TestEnvironmentRoleReadsSecretsAndLogs(t *testing.T) {
	objs := build(t, dirInstall)
	cr := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "arbor-environment-secrets"))
	want := []string{"/pods/log:get", "/pods:list", "/secrets:get"}
	if got := grants(t, cr.Rules); !slices.Equal(got, want) {
		t.Errorf("ClusterRole arbor-environment-secrets grants %v, want exactly %v (docs/security.md)", got, want)
	}
}

func TestRoleIsLeasesAndSecretsReadInArborsNamespace(t *testing.T) {
	objs := build(t, dirInstall)
	role := convert[rbacv1.Role](t, find(t, objs, "Role", "arbor"))
	if role.Namespace != namespace {
		t.Errorf("Role arbor is in %q, want %q", role.Namespace, namespace)
	}
	want := []string{
		"/secrets:get",
		"coordination.k8s.io/leases:create", "coordination.k8s.io/leases:delete", "coordination.k8s.io/leases:get",
		"coordination.k8s.io/leases:list", "coordination.k8s.io/leases:update", "coordination.k8s.io/leases:watch",
	}
	sort.Strings(want)
	if got := grants(t, role.Rules); !slices.Equal(got, want) {
		t.Errorf("Role arbor grants\n  %v\nwant exactly\n  %v", got, want)
	}
	rb := convert[rbacv1.RoleBinding](t, find(t, objs, "RoleBinding", "arbor"))
	if rb.Namespace != namespace || rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != "arbor" ||
		len(rb.Subjects) != 1 || rb.Subjects[0].Name != saName || rb.Subjects[0].Namespace != namespace {
		t.Errorf("RoleBinding arbor: %+v", rb)
	}
}

// TestAdmissionPolicyMatchesTheInstall checks that the policy confines the
// ServiceAccount this install creates, over every kind the ClusterRole lets it write.
func TestAdmissionPolicyMatchesTheInstall(t *testing.T) {
	for _, dir := range []string{dirInstall, dirExample} {
		objs := build(t, dir)
		sa := find(t, objs, "ServiceAccount", saName)
		vap := find(t, objs, "ValidatingAdmissionPolicy", "arbor-confinement")
		conds, _, _ := unstructured.NestedSlice(vap.Object, "spec", "matchConditions")
		user := "system:serviceaccount:" + sa.GetNamespace() + ":" + sa.GetName()
		if len(conds) != 1 || !strings.Contains(conds[0].(map[string]any)["expression"].(string), `"`+user+`"`) {
			t.Errorf("%s: the admission policy's match condition %v does not name %s", dir, conds, user)
		}
		// The daemon's install is its namespace unless the config names one.
		vars, _, _ := unstructured.NestedSlice(vap.Object, "spec", "variables")
		install := ""
		for _, v := range vars {
			if m := v.(map[string]any); m["name"] == "install" {
				install = m["expression"].(string)
			}
		}
		if want := `"` + sa.GetNamespace() + `"`; install != want {
			t.Errorf("%s: the admission policy's install is %s, want %s (the daemon's default install)", dir, install, want)
		}
		rules, _, _ := unstructured.NestedSlice(vap.Object, "spec", "matchConstraints", "resourceRules")
		var got []string
		for _, r := range rules {
			m := r.(map[string]any)
			ops := strings.Join(strs(m["operations"]), ",")
			for _, g := range strs(m["apiGroups"]) {
				for _, res := range strs(m["resources"]) {
					got = append(got, g+"/"+res+" "+ops)
				}
			}
		}
		var want []string
		for _, k := range append(renderedKinds, renderedKind{"", "namespaces", "Namespace"}, renderedKind{"networking.k8s.io", "networkpolicies", "NetworkPolicy"}, secretReaderBinding,
			renderedKind{"discovery.k8s.io", "endpointslices", "EndpointSlice"}) { // the waking route of a paused environment
			want = append(want, k.group+"/"+k.resource+" CREATE,UPDATE,DELETE")
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the admission policy covers\n  %v\nwant\n  %v", dir, got, want)
		}
		b := find(t, objs, "ValidatingAdmissionPolicyBinding", "arbor-confinement")
		if p, _, _ := unstructured.NestedString(b.Object, "spec", "policyName"); p != vap.GetName() {
			t.Errorf("%s: the binding names policy %q", dir, p)
		}
		if a, _, _ := unstructured.NestedStringSlice(b.Object, "spec", "validationActions"); !slices.Equal(a, []string{"Deny"}) {
			t.Errorf("%s: the binding's validationActions are %v, want [Deny]", dir, a)
		}
	}
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestNamespaceIsNotAnEnvironment guards the admission policy's premise:
// arbor's own namespace must never look like one arbor manages.
func TestNamespaceIsNotAnEnvironment(t *testing.T) {
	for _, dir := range []string{dirInstall, dirExample} {
		for _, o := range build(t, dir) {
			if o.GetLabels()["app.kubernetes.io/managed-by"] == "arbor" {
				t.Errorf("%s: %s/%s is labelled app.kubernetes.io/managed-by=arbor", dir, o.GetKind(), o.GetName())
			}
			if ns := o.GetNamespace(); ns != "" && ns != namespace {
				t.Errorf("%s: %s/%s is in namespace %q, want %q", dir, o.GetKind(), o.GetName(), ns, namespace)
			}
		}
	}
}

func TestDeploymentIsHardened(t *testing.T) {
	for _, dir := range []string{dirInstall, dirExample} {
		objs := build(t, dir)
		d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "arbor"))
		spec := d.Spec.Template.Spec
		check := func(ok bool, what string) {
			t.Helper()
			if !ok {
				t.Errorf("%s: Deployment arbor: %s", dir, what)
			}
		}
		check(d.Spec.Replicas != nil && *d.Spec.Replicas == 2, "want 2 replicas")
		check(spec.ServiceAccountName == saName, "runs as ServiceAccount "+spec.ServiceAccountName)
		psc := spec.SecurityContext
		check(psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot, "pod runAsNonRoot")
		check(psc != nil && psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault, "pod seccomp RuntimeDefault")
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: want one container, got %d", dir, len(spec.Containers))
		}
		c := spec.Containers[0]
		sc := c.SecurityContext
		check(sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem")
		check(sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, "allowPrivilegeEscalation false")
		check(sc != nil && sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0, "capabilities drop ALL, add none")
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			_, req := c.Resources.Requests[r]
			check(req, "a request for "+string(r))
		}
		_, memLimit := c.Resources.Limits[corev1.ResourceMemory]
		check(memLimit, "a memory limit")
		check(c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path == "/healthz", "liveness probe on /healthz")
		check(c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path == "/readyz", "readiness probe on /readyz")
		env := map[string]string{}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				env[e.Name] = e.ValueFrom.FieldRef.FieldPath
			}
			check(e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil, "credential "+e.Name+" as an environment variable; mount it as a file")
		}
		check(env["POD_NAMESPACE"] == "metadata.namespace" && env["POD_NAME"] == "metadata.name", "POD_NAMESPACE and POD_NAME from the downward API")
		check(env["POD_IP"] == "status.podIP", "POD_IP from the downward API (the API address published for forwarding)")
		checkVolumes(t, dir, objs, spec, c)
	}
}

// checkVolumes: every ConfigMap and Secret the pod mounts exists in the output
// (or is optional), and the paths are writable only where they are emptyDirs.
func checkVolumes(t *testing.T, dir string, objs []*unstructured.Unstructured, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	writable := 0
	for _, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		switch {
		case !ok:
			t.Errorf("%s: mount %s names no volume", dir, m.Name)
		case v.EmptyDir != nil:
			writable++
		case v.ConfigMap != nil:
			find(t, objs, "ConfigMap", v.ConfigMap.Name)
		case v.Secret != nil:
			if v.Secret.Optional == nil || !*v.Secret.Optional {
				find(t, objs, "Secret", v.Secret.SecretName)
			}
			if !m.ReadOnly {
				t.Errorf("%s: Secret volume %s is mounted writable", dir, m.Name)
			}
		}
	}
	if writable == 0 {
		t.Errorf("%s: no emptyDir for the git cache: the root filesystem is read-only", dir)
	}
}

// TestExampleOverlayPathsResolve checks that every /etc/arbor/... path in the
// example config is a key of a ConfigMap or Secret mounted there, and that the
// placeholder values are marked.
func TestExampleOverlayPathsResolve(t *testing.T) {
	objs := build(t, dirExample)
	d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "arbor"))
	files := map[string]bool{} // paths the pod will see
	vols := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	var config string
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		v := vols[m.Name]
		var keys []string
		switch {
		case v.ConfigMap != nil:
			cm := find(t, objs, "ConfigMap", v.ConfigMap.Name)
			data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
			for k := range data {
				keys = append(keys, k)
			}
			config = data["config.yaml"]
		case v.Secret != nil:
			s := find(t, objs, "Secret", v.Secret.SecretName)
			data, _, _ := unstructured.NestedMap(s.Object, "data")
			for k := range data {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			files[m.MountPath+"/"+k] = true
		}
	}
	if config == "" {
		t.Fatal("the example overlay mounts no config.yaml")
	}
	args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ")
	if m := regexp.MustCompile(`--config[= ](\S+)`).FindStringSubmatch(args); m == nil || !files[m[1]] {
		t.Errorf("arbor's --config in %q is not a mounted file (have %v)", args, files)
	}
	var doc any
	if err := yaml.Unmarshal([]byte(config), &doc); err != nil {
		t.Fatalf("example config.yaml: %v", err)
	}
	walkStrings(doc, func(s string) {
		if strings.HasPrefix(s, "/etc/arbor/") && !files[s] {
			t.Errorf("example config.yaml names %s, which no mounted ConfigMap or Secret provides", s)
		}
	})
	for _, f := range []string{"secrets/git-username", "secrets/git-token", "secrets/webhook-secret", "secrets/shop.env"} {
		b, err := os.ReadFile(dirExample + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "REPLACE-ME") {
			t.Errorf("%s/%s holds a value not marked REPLACE-ME", dirExample, f)
		}
	}
	// secrets_from is read by name through the API: its name must not get a hash suffix.
	find(t, objs, "Secret", "arbor-secrets-shop")
}

func walkStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case []any:
		for _, e := range x {
			walkStrings(e, f)
		}
	case map[string]any:
		for _, e := range x {
			walkStrings(e, f)
		}
	}
}

// TestImageBuildsLikeMake: the image holds `make build`'s binary
// (hack/image.sh runs that target), FROM scratch, as a non-root user.
// TestImage in cmd/arbor builds it and checks what it holds.
func TestImageBuildsLikeMake(t *testing.T) {
	sh, err := os.ReadFile("../hack/image.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^"\$\{MAKE:-make\}" -C "\$ROOT" --no-print-directory build BIN="\$stage"`).Match(sh) {
		t.Error("hack/image.sh does not build the binary with `make build`")
	}
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"FROM scratch", "COPY arbor /usr/local/bin/arbor", "USER 65532:65532"} {
		if !strings.Contains(string(df), must) {
			t.Errorf("Dockerfile lacks %q", must)
		}
	}
	if strings.Contains(string(df), "RUN ") {
		t.Error("Dockerfile has a RUN step: the image has no shell to run it, and builds nothing itself")
	}
}
