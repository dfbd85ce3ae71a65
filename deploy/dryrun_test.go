package deploy

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/internal/testcluster"
)

// TestManifestsPassServerSideDryRun sends every object of `deploy/` and of the
// example overlay to the API server as a server-side dry-run apply (what
// `kubectl apply --server-side --dry-run=server -k` does): schema, defaulting,
// admission and validation all run; nothing is stored. The namespace and
// ServiceAccount are installed for real first, since namespaced objects can only
// be dry-run into a namespace that exists.
func TestManifestsPassServerSideDryRun(t *testing.T) {
	adminCfg := testcluster.Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := newClient(t, adminCfg)
	install(t, ctx, admin, dirInstall)
	for _, dir := range []string{dirInstall, dirExample} {
		objs := build(t, dir)
		if len(objs) < 12 {
			t.Fatalf("%s: only %d objects: %v", dir, len(objs), kinds(objs))
		}
		for _, o := range objs {
			if _, err := admin.apply(ctx, o, fieldOwner, true); err != nil {
				t.Errorf("%s: server-side dry-run of %s/%s: %v", dir, o.GetKind(), o.GetName(), err)
			}
		}
		t.Logf("%s: %d objects pass: %v", dir, len(objs), kinds(objs))
		checkPodSecurity(t, ctx, admin, find(t, objs, "Deployment", "arbor"))
	}
}

// checkPodSecurity dry-runs a Pod made from the Deployment's template in
// arbor-system, which enforces the "restricted" Pod Security Standard: the
// API server refuses a pod that breaks it (a Deployment only gets a warning).
func checkPodSecurity(t *testing.T, ctx context.Context, admin *client, d *unstructured.Unstructured) {
	t.Helper()
	tmpl, _, _ := unstructured.NestedMap(d.Object, "spec", "template")
	pod := &unstructured.Unstructured{Object: tmpl}
	pod.SetAPIVersion("v1")
	pod.SetKind("Pod")
	pod.SetNamespace(d.GetNamespace())
	pod.SetName("arbor-pod-security-check")
	if err := admin.create(ctx, pod, true); err != nil {
		t.Errorf("arbor's pod does not meet the restricted Pod Security Standard of %s: %v", d.GetNamespace(), err)
	}
}
