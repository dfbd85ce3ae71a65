package render

import (
	"strings"
	"testing"
)

// TestJobLabels checks the jobs' labels extension: on the Job and its pod
// template, never overriding arbor's own labels.
func TestJobLabels(t *testing.T) {
	cfg := configFrom(t, "jobs: [{name: migrate, image: x:1, labels: {arbor.dev/test-fail: 'true', team: data}}]", "")
	env, err := Render(Input{Config: cfg, Context: Context{App: "a", Branch: "main", Commit: "c1"}})
	if err != nil {
		t.Fatal(err)
	}
	refs := env.Tasks["jobs.migrate"]
	if len(refs) != 1 || refs[0].Kind != "Job" {
		t.Fatalf("jobs.migrate owns %v, want one Job", refs)
	}
	var job map[string]any
	for _, o := range env.Objects {
		if o.GetKind() == "Job" {
			job = o.Object
			if o.GetLabels()["arbor.dev/test-fail"] != "true" || o.GetLabels()[LabelJob] != "migrate" {
				t.Errorf("Job labels = %v", o.GetLabels())
			}
		}
	}
	pod := job["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)["labels"].(map[string]any)
	if pod["arbor.dev/test-fail"] != "true" || pod["team"] != "data" || pod[LabelManagedBy] != ManagedByValue {
		t.Errorf("pod labels = %v", pod)
	}

	bad := configFrom(t, "jobs: [{name: migrate, image: x:1, labels: {arbor.dev/app: other}}]", "")
	_, err = Render(Input{Config: bad, Context: Context{App: "a", Branch: "main"}})
	if err == nil || !strings.Contains(err.Error(), "arbor.dev/app is set by arbor") {
		t.Fatalf("reserved label: err = %v", err)
	}
}

// TestImportCommitIsCode checks that a new commit on an imported branch
// leaves the importer's configuration hash alone (a patch, not a setup) but
// renames the imported app's Job runs, and that a change of the imported
// app's configuration changes the hash.
func TestImportCommitIsCode(t *testing.T) {
	main := configFrom(t, "app_imports: [{name: backend}]\nparallelize_app_imports: true\nservices: [{name: web, image: web:1}]", "")
	backend := func(image string) Import {
		return Import{App: "backend", Branch: "main", Config: configFrom(t,
			"services: [{name: api, image: "+image+"}]\njobs: [{name: migrate, image: x:1}]\n"+
				"workflows: [{name: patch, order_from: [jobs.migrate, services.api]}]", "")}
	}
	renderAt := func(im Import, commit, own string) *Environment {
		im.Commit = commit
		env, err := Render(Input{Config: main, Context: Context{App: "front", Branch: "main", Commit: own}, Imports: []Import{im}})
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	render := func(im Import, commit string) *Environment { return renderAt(im, commit, "f1") }
	a, b := render(backend("api:1"), "b1"), render(backend("api:1"), "b2")
	if a.ConfigHash != b.ConfigHash {
		t.Errorf("config hash moved with the imported commit: %s → %s", a.ConfigHash, b.ConfigHash)
	}
	if ja, jb := a.Tasks["jobs.migrate"][0].Name, b.Tasks["jobs.migrate"][0].Name; ja == jb {
		t.Errorf("imported job run %s not renamed by a new imported commit", ja)
	}
	if own := renderAt(backend("api:1"), "b2", "f2"); own.Tasks["jobs.migrate"][0].Name != b.Tasks["jobs.migrate"][0].Name {
		t.Errorf("imported job run renamed by the importer's own commit")
	}
	if len(b.Imports) != 1 || b.Imports[0] != (ImportedApp{App: "backend", Branch: "main", Commit: "b2"}) {
		t.Errorf("Imports = %+v", b.Imports)
	}
	if !b.ParallelizeAppImports {
		t.Error("ParallelizeAppImports not set from parallelize_app_imports")
	}
	if c := render(backend("api:2"), "b2"); c.ConfigHash == b.ConfigHash {
		t.Error("config hash unchanged by a change of the imported app's configuration")
	}
	patch := b.Workflows[StagePatch].Steps
	if len(patch) < 2 || patch[0].App != "backend" || patch[0].Tasks[0] != "jobs.migrate" {
		t.Errorf("patch steps = %+v, want the imported app's steps first", patch)
	}
}
