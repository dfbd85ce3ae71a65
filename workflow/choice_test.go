package workflow

import (
	"slices"
	"strings"
	"testing"

	"github.com/arbordev/arbor/render"
)

func TestChooseImportBranch(t *testing.T) {
	repo := ImportedRepo{App: "backend", DefaultBranch: "main", Tracking: "stable",
		Branches: map[string]string{"main": "m1", "stable": "s1", "develop": "d1", "feature/x": "f1"}}
	cases := []struct {
		name, pin, branch string
		repo              ImportedRepo
		want              BranchChoice
		err               string
	}{
		{name: "pinned wins over same name", pin: "develop", branch: "feature/x", repo: repo, want: BranchChoice{"develop", "d1", ChosenPinned}},
		{name: "same name", branch: "feature/x", repo: repo, want: BranchChoice{"feature/x", "f1", ChosenSameName}},
		{name: "tracking branch", branch: "feature/y", repo: repo, want: BranchChoice{"stable", "s1", ChosenTracking}},
		{name: "default branch", branch: "feature/y", repo: ImportedRepo{App: "backend", DefaultBranch: "main", Tracking: "gone", Branches: repo.Branches},
			want: BranchChoice{"main", "m1", ChosenDefault}},
		{name: "pinned branch missing", pin: "nope", branch: "main", repo: repo, err: `pinned branch "nope" does not exist in backend`},
		{name: "nothing to import", branch: "x", repo: ImportedRepo{App: "backend", Branches: map[string]string{"y": "1"}}, err: "no branch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ChooseImportBranch(c.pin, c.branch, c.repo)
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

func TestImportIndex(t *testing.T) {
	ix := NewImportIndex()
	ix.Set(EnvKey{"front", "main"}, []render.ImportedApp{{App: "back", Branch: "main", Commit: "1"}})
	ix.Set(EnvKey{"front", "feat"}, []render.ImportedApp{{App: "back", Branch: "feat", Commit: "2"}, {App: "auth", Branch: "main"}})
	ix.Set(EnvKey{"shop", "main"}, []render.ImportedApp{{App: "back", Branch: "main", Commit: "1"}})
	if got := ix.Importers("back", "main"); !slices.Equal(got, []EnvKey{{"front", "main"}, {"shop", "main"}}) {
		t.Errorf("Importers(back, main) = %v", got)
	}
	if got := ix.ImportersOfApp("auth"); !slices.Equal(got, []EnvKey{{"front", "feat"}}) {
		t.Errorf("ImportersOfApp(auth) = %v", got)
	}
	ix.Forget(EnvKey{"shop", "main"})
	ix.Set(EnvKey{"front", "main"}, nil)
	if got := ix.Importers("back", "main"); len(got) != 0 {
		t.Errorf("after Forget: %v", got)
	}
}

func TestChooseStage(t *testing.T) {
	env := &render.Environment{Commit: "c2", ConfigHash: "h1", AutoDeploy: true,
		Imports: []render.ImportedApp{{App: "back", Branch: "main", Commit: "b1"}}}
	held := *env
	held.AutoDeploy = false
	done := Last{Exists: true, Commit: "c2", ConfigHash: "h1", Imports: env.Imports, SetupDone: true}
	with := func(f func(*Last)) Last { l := done; f(&l); return l }
	cases := []struct {
		name      string
		last      Last
		env       *render.Environment
		requested bool
		stage     string
		held      bool
	}{
		{"new environment", Last{}, env, false, render.StageSetup, false},
		{"new environment, auto_deploy false", Last{}, &held, false, render.StageSetup, false},
		{"first setup never finished", Last{Exists: true}, env, false, render.StageSetup, false},
		{"first setup never finished, auto_deploy false", Last{Exists: true}, &held, false, render.StageSetup, false},
		{"up to date", done, env, false, "", false},
		{"configuration changed", with(func(l *Last) { l.ConfigHash = "h0" }), env, false, render.StageSetup, false},
		{"commit moved", with(func(l *Last) { l.Commit = "c1" }), env, false, render.StagePatch, false},
		{"imported commit moved", with(func(l *Last) { l.Imports = []render.ImportedApp{{App: "back", Branch: "main", Commit: "b0"}} }), env, false, render.StagePatch, false},
		{"failed setup, nothing changed", with(func(l *Last) { l.SetupDone = false }), env, false, "", false},
		{"failed setup, new commit", with(func(l *Last) { l.SetupDone = false; l.Commit = "c1" }), env, false, render.StageSetup, false},
		{"failed setup, requested", with(func(l *Last) { l.SetupDone = false }), env, true, render.StageSetup, false},
		{"auto_deploy false holds a push", with(func(l *Last) { l.Commit = "c1" }), &held, false, "", true},
		{"auto_deploy false, requested", with(func(l *Last) { l.Commit = "c1" }), &held, true, render.StagePatch, false},
		{"auto_deploy false, config, requested", with(func(l *Last) { l.ConfigHash = "h0" }), &held, true, render.StageSetup, false},
		{"request with nothing changed", done, env, true, render.StagePatch, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := ChooseStage(c.last, c.env, c.requested)
			if d.Stage != c.stage || d.Held != c.held || d.Reason == "" {
				t.Fatalf("got %+v, want stage %q held %v", d, c.stage, c.held)
			}
		})
	}
}
