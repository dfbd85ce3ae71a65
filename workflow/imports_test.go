package workflow

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/gitsource"
	"github.com/arbordev/arbor/internal/gittest"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// git runs the git CLI in dir, isolated from the machine's configuration.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return gittest.Run(t, dir, args...)
}

// commit writes files in the repository and commits them on the current branch.
func commit(t *testing.T, dir, msg string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", msg)
	return git(t, dir, "rev-parse", "HEAD")
}

const backendTemplate = `tracking_branch: TRACKING
services:
- name: api
  image: api:1
jobs:
- name: api-migrate
  image: migrate:1
workflows:
- name: setup
  order_from: [jobs.api-migrate, services.api]
- name: patch
  order_from: [jobs.api-migrate, services.api]
`

const frontendTemplate = `app_imports:
- name: backend
  PIN
services:
- name: web
  image: web:1
`

// backendRepo is a real repository of the imported app with branches main
// (the default), stable, develop and feature/x, each on its own commit.
func backendRepo(t *testing.T, tracking string) (dir string, commits map[string]string) {
	dir = t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	commits = map[string]string{}
	commits["main"] = commit(t, dir, "main", map[string]string{".release.yaml": strings.Replace(backendTemplate, "TRACKING", tracking, 1), "VERSION": "main"})
	for _, b := range []string{"stable", "develop", "feature/x"} {
		git(t, dir, "checkout", "-q", "-b", b, "main")
		commits[b] = commit(t, dir, b, map[string]string{"VERSION": b})
	}
	git(t, dir, "checkout", "-q", "main")
	return dir, commits
}

// resolveImport does what the daemon does for an import: list the imported
// app's branches, read its tracking_branch on the default branch, choose the
// branch and load its configuration there.
func resolveImport(t *testing.T, src *gitsource.Source, pin, branch string) (BranchChoice, render.Import) {
	t.Helper()
	ctx := context.Background()
	branches, def, err := src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := src.Tree(ctx, branches[def])
	if err != nil {
		t.Fatal(err)
	}
	defCfg := loadTree(t, tree)
	choice, err := ChooseImportBranch(pin, branch, ImportedRepo{App: "backend", Branches: branches, DefaultBranch: def, Tracking: defCfg.Template.TrackingBranch})
	if err != nil {
		t.Fatal(err)
	}
	tree, err = src.Tree(ctx, choice.Commit)
	if err != nil {
		t.Fatal(err)
	}
	return choice, render.Import{App: "backend", Branch: choice.Branch, Commit: choice.Commit, Config: loadTree(t, tree), Tree: tree}
}

func loadTree(t *testing.T, tree fs.FS) *schema.Config {
	t.Helper()
	cfg, findings, err := schema.Load(tree, schema.DefaultConfigFile, schema.LoadOptions{})
	if err != nil || findings.HasErrors() {
		t.Fatalf("load: %v %v", err, findings.Errors())
	}
	return cfg
}

// TestImportBranchChoice renders a frontend that imports backend, for each
// of the four ways of choosing backend's branch, runs its setup on the
// cluster and checks that backend's objects run the chosen branch's commit
// and that backend's steps ran before the frontend's. For the same-name case
// it then commits on backend's branch and checks that the frontend
// environment is patched: backend's job runs again and its service moves to
// the new commit while the frontend's own service is not written.
func TestImportBranchChoice(t *testing.T) {
	cases := []struct {
		name, pin, branch, tracking, want, why string
	}{
		{"pinned", "branch: develop", "feature/x", "stable", "develop", ChosenPinned},
		{"same name", "", "feature/x", "stable", "feature/x", ChosenSameName},
		{"tracking branch", "", "feature/y", "stable", "stable", ChosenTracking},
		{"default branch", "", "feature/y", "gone", "main", ChosenDefault},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t)
			dir, commits := backendRepo(t, c.tracking)
			src, err := gitsource.Open(gitsource.Options{App: "backend", Repo: dir})
			if err != nil {
				t.Fatal(err)
			}
			choice, im := resolveImport(t, src, strings.TrimPrefix(c.pin, "branch: "), c.branch)
			if choice.Branch != c.want || choice.Why != c.why || choice.Commit != commits[c.want] {
				t.Fatalf("choice %+v, want %s (%s) at %s", choice, c.want, c.why, commits[c.want])
			}
			front := strings.Replace(frontendTemplate, "PIN", c.pin, 1)
			env := h.render(c.branch, "f1", front, im)
			rec := h.record(env.Namespace)
			setup, err := h.x.Run(ctx, Run{Env: env, Stage: render.StageSetup})
			if err != nil {
				t.Fatal(err)
			}
			api, err := h.kube.AppsV1().Deployments(env.Namespace).Get(ctx, "api", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := api.Annotations[render.AnnotationCommit]; got != commits[c.want] {
				t.Errorf("backend's api runs commit %s, want %s (%s)", got, commits[c.want], c.want)
			}
			if api.Labels[render.LabelImportedFrom] != "backend" {
				t.Errorf("api labels %v", api.Labels)
			}
			before(t, "backend's api ready before the frontend's web", rec.first(t, "Deployment", "api", ready), rec.first(t, "Deployment", "web", added))
			if mig, _ := setup.Progress.Task("backend", "jobs.api-migrate"); mig.State != TaskSucceeded {
				t.Errorf("backend's migration: %+v", mig)
			}
			if c.why != ChosenSameName {
				return
			}

			ix := NewImportIndex()
			key := EnvKey{App: h.app, Branch: c.branch}
			ix.Set(key, env.Imports)
			git(t, dir, "checkout", "-q", c.want)
			moved := commit(t, dir, "backend moves", map[string]string{"VERSION": "moved"})
			if got := ix.Importers("backend", c.want); len(got) != 1 || got[0] != key {
				t.Fatalf("Importers(backend, %s) = %v, want %v", c.want, got, key)
			}
			_, im2 := resolveImport(t, src, "", c.branch)
			env2 := h.render(c.branch, "f1", front, im2)
			last := Last{Exists: true, Commit: env.Commit, ConfigHash: env.ConfigHash, Imports: env.Imports, SetupDone: true}
			d := ChooseStage(last, env2, false)
			if d.Stage != render.StagePatch {
				t.Fatalf("a new commit on the imported branch chose %+v, want patch", d)
			}
			web1, err := h.kube.AppsV1().Deployments(env.Namespace).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.x.Run(ctx, Run{Env: env2, Stage: d.Stage}); err != nil {
				t.Fatal(err)
			}
			api2, err := h.kube.AppsV1().Deployments(env.Namespace).Get(ctx, "api", metav1.GetOptions{})
			if err != nil || api2.Annotations[render.AnnotationCommit] != moved {
				t.Errorf("backend's api after the patch: %v %v, want commit %s", api2.Annotations, err, moved)
			}
			job2 := env2.Tasks["jobs.api-migrate"][0].Name
			if job2 == env.Tasks["jobs.api-migrate"][0].Name {
				t.Error("backend's migration run was not renamed by its new commit")
			}
			if _, err := h.kube.BatchV1().Jobs(env.Namespace).Get(ctx, job2, metav1.GetOptions{}); err != nil {
				t.Errorf("backend's migration did not run again: %v", err)
			}
			web2, err := h.kube.AppsV1().Deployments(env.Namespace).Get(ctx, "web", metav1.GetOptions{})
			if err != nil || web2.ResourceVersion != web1.ResourceVersion {
				t.Errorf("the frontend's web was written by the patch (%v)", err)
			}
		})
	}
}
