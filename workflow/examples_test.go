package workflow

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// exampleTree is one of the repository's examples/ apps, as a branch's tree.
func exampleTree(name string) fs.FS {
	return os.DirFS(filepath.Join("..", "examples", name))
}

// loadAs loads an example under the test's own app name, so that its
// namespace is the test's alone (the examples name their app).
func loadAs(t *testing.T, tree fs.FS, app string) *schema.Config {
	cfg := loadTree(t, tree)
	cfg.Template.App = app
	return cfg
}

// bindVolumes plays the storage provisioner the local cluster lacks: every
// claim in ns gets a hostPath PersistentVolume bound to it by claimRef. The
// volumes are deleted when the test ends.
func (h *harness) bindVolumes(ns string) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var made []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		w, err := h.kube.CoreV1().PersistentVolumeClaims(ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			return
		}
		defer w.Stop()
		for ev := range w.ResultChan() {
			pvc, ok := ev.Object.(*corev1.PersistentVolumeClaim)
			if !ok || ev.Type != watch.Added {
				continue
			}
			pv := &corev1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + pvc.Name},
				Spec: corev1.PersistentVolumeSpec{
					Capacity:                      pvc.Spec.Resources.Requests,
					AccessModes:                   pvc.Spec.AccessModes,
					PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
					PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + ns + "-" + pvc.Name}},
					ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: pvc.Name},
				},
			}
			if _, err := h.kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err == nil {
				mu.Lock()
				made = append(made, pv.Name)
				mu.Unlock()
			}
		}
	}()
	h.t.Cleanup(func() {
		cancel()
		<-done
		for _, name := range made {
			_ = h.kube.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
}

// TestExamples runs the examples' workflows on the cluster: shop's setup
// (data services, migrate, seed, app, edge) and teardown (backup, then
// removal); storefront's setup with the imported catalog's steps first.
func TestExamples(t *testing.T) {
	ctx := context.Background()
	t.Run("shop", func(t *testing.T) {
		h := newHarness(t)
		tree := exampleTree("shop")
		env, err := render.Render(render.Input{
			Config: loadAs(t, tree, h.app), Tree: tree,
			Context: render.Context{App: h.app, Branch: "feature/checkout", Commit: "c1", Domain: "test.local",
				Secrets: map[string]string{"POSTGRES_PASSWORD": "example-only"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		h.cleanup(env.Namespace)
		h.bindVolumes(env.Namespace)
		if env.Template != render.TemplateEphemeral || env.ExpiresAfter != "72h" {
			t.Errorf("template %s, expires after %q", env.Template, env.ExpiresAfter)
		}
		setup, err := h.x.Run(ctx, Run{Env: env, Stage: render.StageSetup})
		if err != nil {
			t.Fatalf("setup: %v\n%+v", err, setup.Progress.Tasks)
		}
		assertOrder(t, setup.Progress, "services.redis", "jobs.migrate", "jobs.seed", "services.api", "services.web")
		down, err := h.x.Run(ctx, Run{Env: env, Stage: render.StageTeardown, Inventory: setup.Applied})
		if err != nil || !down.Removed {
			t.Fatalf("teardown: %v (removed %v)", err, down.Removed)
		}
		assertOrder(t, down.Progress, "jobs.backup", render.TaskRemoveEnv)
	})
	t.Run("storefront imports catalog", func(t *testing.T) {
		h := newHarness(t)
		front, back := exampleTree("storefront"), exampleTree("catalog")
		env, err := render.Render(render.Input{
			Config: loadAs(t, front, h.app), Tree: front,
			Context: render.Context{App: h.app, Branch: "feature/cart", Commit: "s1", Domain: "test.local"},
			Imports: []render.Import{{App: "catalog", Branch: "main", Commit: "k1", Config: loadTree(t, back), Tree: back}},
		})
		if err != nil {
			t.Fatal(err)
		}
		h.cleanup(env.Namespace)
		h.bindVolumes(env.Namespace)
		setup, err := h.x.Run(ctx, Run{Env: env, Stage: render.StageSetup})
		if err != nil {
			t.Fatalf("setup: %v\n%+v", err, setup.Progress.Tasks)
		}
		assertOrder(t, setup.Progress, "services.catalog-db", "jobs.catalog-migrate", "services.catalog-api", "services.storefront-web", "jobs.warm-cache")
	})
}

// assertOrder checks that each task finished before the next one started.
func assertOrder(t *testing.T, p Progress, tasks ...string) {
	t.Helper()
	var prev Task
	for i, name := range tasks {
		var tk Task
		for _, x := range p.Tasks {
			if x.Name == name {
				tk = x
			}
		}
		if tk.State != TaskSucceeded {
			t.Errorf("%s: %s %s", name, tk.State, tk.Reason)
			continue
		}
		if i > 0 && tk.Started.Before(prev.Finished) {
			t.Errorf("%s started at %s, before %s finished at %s", name, tk.Started.Format(time.StampMilli), prev.Name, prev.Finished.Format(time.StampMilli))
		}
		prev = tk
	}
}
