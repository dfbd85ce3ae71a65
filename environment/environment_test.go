package environment

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/schema"
)

func TestImport(t *testing.T) {
	tree := fstest.MapFS{".release.yaml": {Data: []byte("services: [{name: api, image: x:1}, {name: db, image: y:1}]\n")}}
	ai := schema.AppImport{Name: "back", ExcludeServices: []schema.NameRef{{Name: "db"}}}
	im, findings, err := Import(Imported{Import: ai, Branch: "main", Commit: "c1", Tree: tree, Path: ".release.yaml",
		Parameters: map[string]string{"p": "1"}, Secrets: map[string]string{"S": "v"}})
	if err != nil || findings.HasErrors() {
		t.Fatalf("import: %v %v", err, findings)
	}
	if im.App != "back" || im.Branch != "main" || im.Commit != "c1" || im.Config == nil || !slices.Equal(im.ExcludeServices, []string{"db"}) ||
		im.Parameters["p"] != "1" || im.Secrets["S"] != "v" {
		t.Errorf("import = %+v", im)
	}
	bad := fstest.MapFS{".release.yaml": {Data: []byte("services: [{name: api}]\n")}}
	_, findings, err = Import(Imported{Import: ai, Branch: "main", Tree: bad, Path: ".release.yaml"})
	if err == nil || !strings.HasPrefix(err.Error(), "app_imports back@main: invalid configuration: ") || !findings.HasErrors() {
		t.Errorf("an invalid imported configuration: %v (findings %v)", err, findings)
	}
	_, _, err = Import(Imported{Import: ai, Branch: "main", Tree: fstest.MapFS{}, Path: ".release.yaml"})
	if !errors.Is(err, schema.ErrNoConfig) {
		t.Errorf("an imported app without configuration: %v, want ErrNoConfig", err)
	}
}

func TestSecrets(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	ctx := context.Background()
	s, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Data: map[string][]byte{"DB_PASSWORD": []byte("hunter2")}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	values, uid, err := Secrets(ctx, cs, ns, "app")
	if err != nil || values["DB_PASSWORD"] != "hunter2" || string(uid) != string(s.UID) {
		t.Errorf("Secrets = %v, %q, %v", values, uid, err)
	}
	_, _, err = Secrets(ctx, cs, ns, "missing")
	if !errors.Is(err, ErrNoSecret) || !strings.Contains(err.Error(), "Secret/"+ns+"/missing") {
		t.Errorf("a missing Secret: %v", err)
	}
}
