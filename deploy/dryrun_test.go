package deploy

import (
	"context"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/testcluster"
)

// TestManifestsPassServerSideDryRun sends every object of `deploy/` and of the
// example overlay to the API server as a server-side dry-run apply (what
// `kubectl apply --server-side --dry-run=server -k` does): schema, defaulting,
// admission and validation all run; nothing is stored. The namespace and
// ServiceAccount are installed for real first, since namespaced objects can only
// be dry-run into a namespace that exists.
func TestManifestsPassServerSideDryRun(t *testing.T) {
	adminCfg := testcluster.Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := newClient(t, adminCfg)
	install(t, ctx, admin, dirInstall)
	for _, dir := range []string{dirInstall, dirExample} {
		objs := build(t, dir)
		if len(objs) < 12 {
			t.Fatalf("%s: only %d objects: %v", dir, len(objs), kinds(objs))
		}
		for _, o := range objs {
			if _, err := admin.apply(ctx, o, fieldOwner, true); err != nil {
				t.Errorf("%s: server-side dry-run of %s/%s: %v", dir, o.GetKind(), o.GetName(), err)
			}
		}
		t.Logf("%s: %d objects pass: %v", dir, len(objs), kinds(objs))
	}
}
