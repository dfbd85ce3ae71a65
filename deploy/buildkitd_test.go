package deploy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/internal/testcluster"
)

// dirBuildkitd is the optional BuildKit daemon of build mode.
const dirBuildkitd = "buildkitd"

func TestBuildkitdManifests(t *testing.T) {
	objs := build(t, dirBuildkitd)
	ns := find(t, objs, "Namespace", "arbor-buildkit")
	if ns.GetLabels()["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace labels %v: rootless buildkitd needs the privileged level", ns.GetLabels())
	}
	d := find(t, objs, "Deployment", "buildkitd")
	if d.GetNamespace() != "arbor-buildkit" {
		t.Errorf("buildkitd in namespace %q, want arbor-buildkit (never arbor-system)", d.GetNamespace())
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("containers: %v", containers)
	}
	c := containers[0].(map[string]any)
	sc, _ := c["securityContext"].(map[string]any)
	if sc["privileged"] == true || sc["runAsNonRoot"] != true || fmt.Sprint(sc["runAsUser"]) != "1000" {
		t.Errorf("securityContext %v: want rootless (UID 1000, non-root, not privileged)", sc)
	}
	if img, _ := c["image"].(string); img != "docker.io/moby/buildkit:v0.34.2-rootless" {
		t.Errorf("image %q, want the rootless v0.34.2 image", img)
	}
	np := find(t, objs, "NetworkPolicy", "buildkitd")
	from, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
	if len(from) != 1 || !strings.Contains(fmt.Sprint(from), "arbor-system") || !strings.Contains(fmt.Sprint(from), "component:daemon") {
		t.Errorf("ingress %v: want only arbor's daemon pods", from)
	}
	find(t, objs, "Service", "buildkitd")
}

// TestBuildkitdPassesServerSideDryRun sends deploy/buildkitd to the API
// server as a dry-run (its namespace for real), and checks Pod Security both
// ways: buildkitd's pod is admitted in its own namespace and refused in
// arbor-system, which is why it has one.
func TestBuildkitdPassesServerSideDryRun(t *testing.T) {
	adminCfg := testcluster.Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := newClient(t, adminCfg)
	install(t, ctx, admin, dirInstall)
	objs := build(t, dirBuildkitd)
	for _, o := range objs {
		if _, err := admin.apply(ctx, o, fieldOwner, o.GetKind() != "Namespace"); err != nil {
			t.Errorf("server-side dry-run of %s/%s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	d := find(t, objs, "Deployment", "buildkitd")
	tmpl, _, _ := unstructured.NestedMap(d.Object, "spec", "template")
	for ns, admitted := range map[string]bool{"arbor-buildkit": true, namespace: false} {
		pod := &unstructured.Unstructured{Object: tmpl}
		pod = pod.DeepCopy()
		pod.SetAPIVersion("v1")
		pod.SetKind("Pod")
		pod.SetNamespace(ns)
		pod.SetName("buildkitd-pod-security-check")
		err := admin.create(ctx, pod, true)
		if admitted && err != nil {
			t.Errorf("buildkitd's pod refused in %s: %v", ns, err)
		}
		if !admitted && (err == nil || !strings.Contains(err.Error(), "PodSecurity")) {
			t.Errorf("buildkitd's pod in %s: %v; want Pod Security to refuse it", ns, err)
		}
	}
}
