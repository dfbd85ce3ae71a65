package workflow

import (
	"context"
	"testing"

	"github.com/arbordev/arbor/render"
)

// TestImportsParallel runs a setup with two imported apps, one after the
// other and then with parallelize_app_imports, and checks from the task
// times that the imports ran in sequence or overlapped, and always before
// the importer's own step.
func TestImportsParallel(t *testing.T) {
	imported := func(app, svc string) render.Import {
		return render.Import{App: app, Branch: "main", Commit: app + "1",
			Config: load(t, "services:\n- name: "+svc+"\n  image: "+svc+":1\n")}
	}
	for _, parallel := range []bool{false, true} {
		name := "sequential"
		if parallel {
			name = "parallel"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			tmpl := "app_imports: [{name: alpha}, {name: beta}]\nservices:\n- name: web\n  image: web:1\n"
			if parallel {
				tmpl = "parallelize_app_imports: true\n" + tmpl
			}
			env := h.render("main", "c1", tmpl, imported("alpha", "a"), imported("beta", "b"))
			res, err := h.x.Run(context.Background(), Run{Env: env, Stage: render.StageSetup})
			if err != nil {
				t.Fatal(err)
			}
			a, _ := res.Progress.Task("alpha", "services.a")
			b, _ := res.Progress.Task("beta", "services.b")
			web, _ := res.Progress.Task("", "services.web")
			for _, tk := range []Task{a, b, web} {
				if tk.State != TaskSucceeded {
					t.Fatalf("%s/%s: %s %s", tk.App, tk.Name, tk.State, tk.Reason)
				}
			}
			if web.Started.Before(a.Finished) || web.Started.Before(b.Finished) {
				t.Errorf("the importer's web started before the imports finished: %+v", res.Progress.Tasks)
			}
			overlap := b.Started.Before(a.Finished) && a.Started.Before(b.Finished)
			if overlap != parallel {
				t.Errorf("imports overlapped = %v, want %v: alpha %v–%v, beta %v–%v", overlap, parallel, a.Started, a.Finished, b.Started, b.Finished)
			}
		})
	}
}
