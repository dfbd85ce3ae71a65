package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/server"
	"github.com/arbordev/arbor/workflow"
)

// TestDeployCommand runs arbor deploy against the deploy API served by
// package server on the real cluster: the request lands as an
// annotation on the environment's namespace.
func TestDeployCommand(t *testing.T) {
	kube := testcluster.Clientset(t)
	ctx := context.Background()
	ns := testcluster.Name("deploy-cmd")
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{render.LabelManagedBy: render.ManagedByValue},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	arborNS := testcluster.Namespace(t, kube)
	auth := &server.Authorizer{Kube: kube, Namespace: arborNS}
	token := testcluster.ServiceAccountToken(t, kube, arborNS, "deployer", "deploy")
	routes := server.Routes{
		Deploy: func(ctx context.Context, app, env string) (any, error) {
			if app != "shop" || (env != "feature-x" && env != "feature/x") {
				return nil, server.ErrNotFound
			}
			v, err := workflow.RequestDeploy(ctx, kube, ns, "", time.Now())
			return workflow.DeployResponse{App: app, Env: env, Namespace: ns, Requested: v}, err
		},
		Guard: auth.Require,
	}
	srv := httptest.NewServer(server.New(routes, server.Options{}))
	defer srv.Close()

	run := func(args ...string) (string, int) {
		var out bytes.Buffer
		root := newRootCmd()
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.ExecuteContext(ctx)
		if err != nil {
			out.WriteString(err.Error())
		}
		return out.String(), exitCode(err)
	}
	if out, code := run("deploy", "--server", srv.URL, "shop", "feature-x"); code == exitOK || !strings.Contains(out, "401") {
		t.Fatalf("deploy without a token: exit %d: %s", code, out)
	}
	out, code := run("deploy", "--server", srv.URL, "--token", token, "shop", "feature-x")
	if code != exitOK || !strings.Contains(out, "namespace "+ns) {
		t.Fatalf("deploy: exit %d: %s", code, out)
	}
	got, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, pending := workflow.Requested(got.Annotations, ""); !pending {
		t.Errorf("no deploy request on the namespace: %v", got.Annotations)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := run("deploy", "--server", srv.URL, "--token-file", tokenFile, "shop", "feature/x"); code != exitOK {
		t.Errorf("deploy by branch name: exit %d: %s", code, out)
	}
	t.Setenv("ARBOR_SERVER", srv.URL)
	t.Setenv("ARBOR_TOKEN", token)
	if out, code := run("deploy", "shop", "nope"); code != exitNo || !strings.Contains(out, "404") {
		t.Errorf("unknown environment: exit %d: %s", code, out)
	}
	if out, code := run("deploy", "--server", "not a url", "shop", "feature-x"); code != exitUsage {
		t.Errorf("bad server: exit %d: %s", code, out)
	}
}
