package workflow

import (
	"fmt"
	"sort"
	"sync"

	"github.com/arbordev/arbor/render"
)

// Why an imported app's branch was chosen (docs/release-yaml.md#app-imports).
const (
	ChosenPinned   = "pinned"          // app_imports[].branch
	ChosenSameName = "same name"       // the imported app has a branch named like the environment's
	ChosenTracking = "tracking branch" // the imported app's tracking_branch
	ChosenDefault  = "default branch"  // the imported app's default branch (its remote's HEAD)
)

// BranchChoice is the branch an environment imports an app at.
type BranchChoice struct {
	Branch string
	Commit string
	Why    string // ChosenPinned, ChosenSameName, ChosenTracking or ChosenDefault
}

// ImportedRepo is what the branch choice needs to know of an imported app:
// its listed branches (branch → commit), its default branch and its
// tracking_branch (from its template on the default branch; "" when unset).
type ImportedRepo struct {
	App           string
	Branches      map[string]string
	DefaultBranch string
	Tracking      string
}

// ChooseImportBranch picks the branch of an imported app for an environment
// of branch: the pinned branch when app_imports names one (it must exist),
// else the imported app's branch of the same name, else its tracking_branch,
// else its default branch.
func ChooseImportBranch(pin, branch string, repo ImportedRepo) (BranchChoice, error) {
	pick := func(b, why string) (BranchChoice, bool) {
		c, ok := repo.Branches[b]
		return BranchChoice{Branch: b, Commit: c, Why: why}, ok && b != ""
	}
	if pin != "" {
		if c, ok := pick(pin, ChosenPinned); ok {
			return c, nil
		}
		return BranchChoice{}, fmt.Errorf("app_imports %s: pinned branch %q does not exist in %s", repo.App, pin, repo.App)
	}
	for _, try := range []struct{ branch, why string }{
		{branch, ChosenSameName}, {repo.Tracking, ChosenTracking}, {repo.DefaultBranch, ChosenDefault},
	} {
		if c, ok := pick(try.branch, try.why); ok {
			return c, nil
		}
	}
	return BranchChoice{}, fmt.Errorf("app_imports %s: no branch %q, no tracking branch and no default branch to import", repo.App, branch)
}

// EnvKey names an environment: an app's branch.
type EnvKey struct{ App, Branch string }

func (k EnvKey) String() string { return k.App + "@" + k.Branch }

// ImportIndex records which imported branches each environment was last
// rendered with, so that a new commit on an imported branch can be sent to
// every environment importing it. The daemon sets an environment's imports
// after each render, forgets it when it is deleted, and on a moved branch of
// app A asks Importers(A, branch). It is safe for concurrent use.
type ImportIndex struct {
	mu    sync.Mutex
	byEnv map[EnvKey][]render.ImportedApp
}

// NewImportIndex returns an empty index.
func NewImportIndex() *ImportIndex { return &ImportIndex{byEnv: map[EnvKey][]render.ImportedApp{}} }

// Set records the imports env was rendered with; none forgets it.
func (ix *ImportIndex) Set(env EnvKey, imports []render.ImportedApp) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if len(imports) == 0 {
		delete(ix.byEnv, env)
		return
	}
	ix.byEnv[env] = append([]render.ImportedApp(nil), imports...)
}

// Forget removes env (its environment is gone).
func (ix *ImportIndex) Forget(env EnvKey) { ix.Set(env, nil) }

// Importers returns the environments that import app at branch, sorted.
func (ix *ImportIndex) Importers(app, branch string) []EnvKey {
	return ix.find(func(im render.ImportedApp) bool { return im.App == app && im.Branch == branch })
}

// ImportersOfApp returns the environments that import app at any branch,
// sorted: after a listing of app with a branch created or deleted, their
// branch choice may change.
func (ix *ImportIndex) ImportersOfApp(app string) []EnvKey {
	return ix.find(func(im render.ImportedApp) bool { return im.App == app })
}

func (ix *ImportIndex) find(match func(render.ImportedApp) bool) []EnvKey {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var out []EnvKey
	for env, ims := range ix.byEnv {
		for _, im := range ims {
			if match(im) {
				out = append(out, env)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].Branch < out[j].Branch
	})
	return out
}
