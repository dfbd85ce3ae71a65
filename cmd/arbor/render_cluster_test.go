package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/arbordev/arbor/internal/testcluster"
)

// TestRenderKubectlDryRun pipes arbor render's output, YAML and JSON, for
// every example into `kubectl apply --dry-run=client -f -` against the test
// cluster, as the command's help promises.
func TestRenderKubectlDryRun(t *testing.T) {
	kubeconfig := testcluster.KubeconfigPath(t)
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed for this test: %v", err)
	}
	for _, args := range [][]string{
		{"../../examples/shop"},
		{"../../examples/catalog", "--output", "json"},
		{"../../examples/storefront", "--import", "catalog=../../examples/catalog"},
		{"../../examples/kustomized", "--output", "json"},
	} {
		stdout, stderr, code := runArbor(t, append([]string{"render", "--branch", "feature/kubectl"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		cmd := exec.Command(kubectl, "--kubeconfig", kubeconfig, "apply", "--dry-run=client", "-f", "-")
		cmd.Stdin = strings.NewReader(stdout)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: kubectl: %v\n%s", args, err, out)
		}
		if n := strings.Count(string(out), "(dry run)"); n < 4 {
			t.Errorf("%v: kubectl accepted only %d objects:\n%s", args, n, out)
		}
	}
}
