package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/server"
)

const heldTemplate = `auto_deploy: false
services:
- name: web
  image: web
  has_repo: true
`

// deployServer serves the deploy endpoint for h's environments, found by
// branch, as the daemon's server does (with every caller allowed).
func (h *harness) deployServer(envs map[string]*render.Environment) *httptest.Server {
	routes := server.Routes{
		Deploy: func(ctx context.Context, app, env string) (any, error) {
			e, ok := envs[env]
			if !ok || app != h.app {
				return nil, fmt.Errorf("app %s has no environment %s: %w", app, env, server.ErrNotFound)
			}
			v, err := RequestDeploy(ctx, h.kube, e.Namespace, "", time.Now())
			return DeployResponse{App: app, Env: env, Namespace: e.Namespace, Requested: v}, err
		},
		Guard: func(_ string, h http.Handler) http.Handler { return h },
	}
	srv := httptest.NewServer(server.New(routes, server.Options{}))
	h.t.Cleanup(srv.Close)
	return srv
}

func (h *harness) post(url string) (int, DeployResponse) {
	h.t.Helper()
	resp, err := http.Post(url, "application/json", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body DeployResponse
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func (h *harness) annotations(ns string) map[string]string {
	h.t.Helper()
	n, err := h.kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return n.Annotations
}

// TestAutoDeployFalse: an app with auto_deploy: false gets its environment
// on branch creation, but a push does not update it until a deploy is
// requested through the API; the request is then handled once.
func TestAutoDeployFalse(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	env1 := h.render("main", "c1", heldTemplate)
	if env1.AutoDeploy {
		t.Fatal("auto_deploy: false not rendered")
	}
	d := ChooseStage(Last{}, env1, false)
	if d.Stage != render.StageSetup {
		t.Fatalf("a new environment with auto_deploy false: %+v", d)
	}
	if _, err := h.x.Run(ctx, Run{Env: env1, Stage: d.Stage}); err != nil {
		t.Fatal(err)
	}
	last := Last{Exists: true, Commit: env1.Commit, ConfigHash: env1.ConfigHash, SetupDone: true}

	env2 := h.render("main", "c2", heldTemplate)
	handled := ""
	_, requested := Requested(h.annotations(env2.Namespace), handled)
	if d := ChooseStage(last, env2, requested); !d.Held || d.Stage != "" {
		t.Fatalf("a push with auto_deploy false: %+v, want held", d)
	}
	image := func() string {
		dep, err := h.kube.AppsV1().Deployments(env2.Namespace).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return dep.Spec.Template.Spec.Containers[0].Image
	}
	if got := image(); got != "web:c1" {
		t.Fatalf("image %s before the request", got)
	}

	srv := h.deployServer(map[string]*render.Environment{"main": env2})
	if code, _ := h.post(srv.URL + "/api/v1/apps/" + h.app + "/environments/nope/deploy"); code != http.StatusNotFound {
		t.Errorf("deploy of an unknown environment: %d, want 404", code)
	}
	code, body := h.post(srv.URL + "/api/v1/apps/" + h.app + "/environments/main/deploy")
	if code != http.StatusAccepted || body.Namespace != env2.Namespace || body.Requested == "" {
		t.Fatalf("deploy request: %d %+v", code, body)
	}
	value, requested := Requested(h.annotations(env2.Namespace), handled)
	if !requested || value != body.Requested {
		t.Fatalf("request on the namespace: %q %v, want %q", value, requested, body.Requested)
	}
	d = ChooseStage(last, env2, requested)
	if d.Stage != render.StagePatch {
		t.Fatalf("after a request: %+v", d)
	}
	if _, err := h.x.Run(ctx, Run{Env: env2, Stage: d.Stage}); err != nil {
		t.Fatal(err)
	}
	handled = value
	if got := image(); got != "web:c2" {
		t.Errorf("image %s after the requested deploy, want web:c2", got)
	}
	if _, again := Requested(h.annotations(env2.Namespace), handled); again {
		t.Error("a handled request is pending again")
	}
}

// TestFailedSetupRetriedOnRequest: a setup that halted leaves the
// environment failed; nothing runs until a change or a request; the retry
// runs the failed Job again as a fresh Job (a new UID).
func TestFailedSetupRetriedOnRequest(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	env := h.render("main", "c1", shop(failLabel, "halt_on_error: true"))
	if _, err := h.x.Run(ctx, Run{Env: env, Stage: render.StageSetup}); !errors.Is(err, ErrHalted) {
		t.Fatalf("setup: %v, want halted", err)
	}
	jobName := env.Tasks["jobs.migrate"][0].Name
	first, err := h.kube.BatchV1().Jobs(env.Namespace).Get(ctx, jobName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	last := Last{Exists: true, Commit: env.Commit, ConfigHash: env.ConfigHash, SetupDone: false}
	if d := ChooseStage(last, env, false); d.Stage != "" {
		t.Fatalf("failed setup with nothing changed: %+v, want nothing", d)
	}
	if _, err := RequestDeploy(ctx, h.kube, env.Namespace, "", first.CreationTimestamp.Time); err != nil {
		t.Fatal(err)
	}
	_, requested := Requested(h.annotations(env.Namespace), "")
	d := ChooseStage(last, env, requested)
	if d.Stage != render.StageSetup {
		t.Fatalf("failed setup, requested: %+v", d)
	}
	if _, err := h.x.Run(ctx, Run{Env: env, Stage: d.Stage}); !errors.Is(err, ErrHalted) {
		t.Fatalf("retried setup: %v, want halted again (the job still fails)", err)
	}
	second, err := h.kube.BatchV1().Jobs(env.Namespace).Get(ctx, jobName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.UID == first.UID {
		t.Error("the failed Job run was not run again")
	}
}
