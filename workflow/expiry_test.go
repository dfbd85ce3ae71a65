package workflow

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/arbordev/arbor/gitsource"
	"github.com/arbordev/arbor/render"
)

const expiringTemplate = `tracking_branch: main
environment_templates:
- name: ephemeral
  expires_after: 1h
- name: preview
  branches: ["preview/*"]
  expires_after: 30m
services:
- name: web
  image: web:1
`

// commitAt commits files on the current branch with the given committer date.
func commitAt(t *testing.T, dir string, when time.Time, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "add", "-A")
	cmd := exec.Command("git", "commit", "-q", "-m", "change")
	cmd.Dir = dir
	date := when.Format(time.RFC3339)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/nonexistent",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@arbor.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@arbor.invalid",
		"GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git commit: %v\n%s", err, out)
	}
	return git(t, dir, "rev-parse", "HEAD")
}

func TestCheckExpiry(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name, after string
		commit      time.Time
		ann         map[string]string
		want        Expiry
		err         string
	}{
		{"never", "", now.Add(-1000 * time.Hour), nil, Expiry{}, ""},
		{"fresh", "72h", now.Add(-time.Hour), nil, Expiry{At: now.Add(71 * time.Hour)}, ""},
		{"expired", "72h", now.Add(-73 * time.Hour), nil, Expiry{Expired: true, At: now.Add(-time.Hour)}, ""},
		{"exactly at the deadline", "1h", now.Add(-time.Hour), nil, Expiry{Expired: true, At: now}, ""},
		{"kept", "72h", now.Add(-73 * time.Hour), map[string]string{render.AnnotationKeep: "true"}, Expiry{Kept: true}, ""},
		{"keep other than true", "72h", now.Add(-73 * time.Hour), map[string]string{render.AnnotationKeep: "yes"}, Expiry{Expired: true, At: now.Add(-time.Hour)}, ""},
		{"bad duration", "soon", now, nil, Expiry{}, "expires_after"},
		{"extended", "72h", now.Add(-73 * time.Hour), map[string]string{AnnotationExpiresAt: now.Add(5 * time.Hour).Format(time.RFC3339)}, Expiry{At: now.Add(5 * time.Hour)}, ""},
		{"extension older than a push", "72h", now.Add(-time.Hour), map[string]string{AnnotationExpiresAt: now.Add(5 * time.Hour).Format(time.RFC3339)}, Expiry{At: now.Add(71 * time.Hour)}, ""},
		{"extension run out", "72h", now.Add(-73 * time.Hour), map[string]string{AnnotationExpiresAt: now.Add(-5 * time.Minute).Format(time.RFC3339)}, Expiry{Expired: true, At: now.Add(-5 * time.Minute)}, ""},
		{"extension unreadable", "72h", now.Add(-73 * time.Hour), map[string]string{AnnotationExpiresAt: "tomorrow"}, Expiry{Expired: true, At: now.Add(-time.Hour)}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CheckExpiry(c.after, c.commit, c.ann, now)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

// TestExpiryAndKeep runs the expiry decision against the cluster and a real
// repository: an ephemeral environment whose newest commit is older than
// expires_after is torn down; one whose namespace is annotated
// arbor.dev/keep: "true" is not; the permanent environment never expires;
// a branches glob claims preview/*; and the next push to the expired branch
// sets its environment up again.
func TestExpiryAndKeep(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	old := time.Now().Add(-2 * time.Hour)
	commitAt(t, dir, old, map[string]string{".release.yaml": expiringTemplate})
	for _, b := range []string{"feature/old", "feature/kept", "preview/x"} {
		git(t, dir, "branch", b)
	}
	src, err := gitsource.Open(gitsource.Options{App: h.app, Repo: dir})
	if err != nil {
		t.Fatal(err)
	}
	branches, _, err := src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	envs := map[string]*render.Environment{}
	for b, c := range branches {
		envs[b] = h.render(b, c, expiringTemplate)
	}
	for b, want := range map[string]string{"main": "permanent", "feature/old": "ephemeral", "preview/x": "preview"} {
		if got := envs[b].Template; got != want {
			t.Errorf("%s: template %s, want %s", b, got, want)
		}
	}
	inventories := map[string]*Result{}
	for _, b := range []string{"main", "feature/old", "feature/kept"} {
		res, err := h.x.Run(ctx, Run{Env: envs[b], Stage: render.StageSetup})
		if err != nil {
			t.Fatal(err)
		}
		inventories[b] = res
	}
	keep := []byte(`{"metadata":{"annotations":{"arbor.dev/keep":"true"}}}`)
	if _, err := h.kube.CoreV1().Namespaces().Patch(ctx, envs["feature/kept"].Namespace, types.MergePatchType, keep, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	expiry := func(b string) Expiry {
		t.Helper()
		when, err := src.CommitTime(ctx, branches[b])
		if err != nil {
			t.Fatal(err)
		}
		var ann map[string]string
		ns, err := h.kube.CoreV1().Namespaces().Get(ctx, envs[b].Namespace, metav1.GetOptions{})
		if err == nil {
			ann = ns.Annotations
		} else if !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		e, err := CheckExpiry(envs[b].ExpiresAfter, when, ann, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	if e := expiry("main"); e.Expired || !e.At.IsZero() {
		t.Errorf("permanent environment: %+v, want never", e)
	}
	if e := expiry("feature/kept"); e.Expired || !e.Kept {
		t.Errorf("kept environment: %+v", e)
	}
	e := expiry("feature/old")
	if !e.Expired {
		t.Fatalf("feature/old, last commit 2h ago, expires_after 1h: %+v", e)
	}
	res, err := h.x.Run(ctx, Run{Env: envs["feature/old"], Stage: render.StageTeardown, Inventory: inventories["feature/old"].Applied})
	if err != nil || !res.Removed {
		t.Fatalf("teardown of the expired environment: %v (removed %v)", err, res.Removed)
	}
	for b, gone := range map[string]bool{"feature/old": true, "feature/kept": false, "main": false} {
		_, err := h.kube.CoreV1().Namespaces().Get(ctx, envs[b].Namespace, metav1.GetOptions{})
		if gone != apierrors.IsNotFound(err) {
			t.Errorf("%s: namespace gone = %v, want %v (%v)", b, apierrors.IsNotFound(err), gone, err)
		}
	}

	// The next push recreates it: a fresh commit has not expired, and with
	// no record left the stage is setup.
	git(t, dir, "checkout", "-q", "feature/old")
	pushed := commitAt(t, dir, time.Now(), map[string]string{"VERSION": "2"})
	branches, _, err = src.ListBranches(ctx)
	if err != nil || branches["feature/old"] != pushed {
		t.Fatalf("listing after the push: %v %v", branches, err)
	}
	envs["feature/old"] = h.render("feature/old", pushed, expiringTemplate)
	if e := expiry("feature/old"); e.Expired {
		t.Fatalf("after a push: %+v", e)
	}
	d := ChooseStage(Last{}, envs["feature/old"], false)
	if d.Stage != render.StageSetup {
		t.Fatalf("after expiry and a push: %+v", d)
	}
	if _, err := h.x.Run(ctx, Run{Env: envs["feature/old"], Stage: d.Stage}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.kube.AppsV1().Deployments(envs["feature/old"].Namespace).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("environment not recreated: %v", err)
	}
}
