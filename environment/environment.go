// Package environment is what the command line and the daemon share in
// building an environment before render: reading an app's secrets_from
// Secret, and loading an imported app from its tree into a render.Import.
// The daemon picks the imported branch (workflow.ChooseImportBranch) and
// the command line takes a directory; both end here, so an import and its
// secrets mean the same in `arbor apply` and in the daemon. Running a stage
// of the rendered environment is package workflow's, for both as well.
package environment

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// ErrNoSecret is returned (wrapped) by Secrets when the Secret does not exist.
var ErrNoSecret = errors.New("not found")

// Secrets reads the values of the Secret namespace/name (an app's
// secrets_from, or --secrets-from), and its UID, which keys the hashes that
// cover those values (render.Context.HashKey). Errors name the Secret, never
// a value.
func Secrets(ctx context.Context, cs kubernetes.Interface, namespace, name string) (map[string]string, []byte, error) {
	s, err := cs.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, fmt.Errorf("Secret/%s/%s: %w", namespace, name, ErrNoSecret)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("Secret/%s/%s: %w", namespace, name, err)
	}
	out := make(map[string]string, len(s.Data))
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out, []byte(s.UID), nil
}

// Imported is an imported app at the branch and commit chosen for it.
type Imported struct {
	Import schema.AppImport // the importer's app_imports entry
	Branch string
	Commit string
	Tree   fs.FS  // the imported app's tree at Commit
	Path   string // its configuration file in Tree
	Load   schema.LoadOptions
	// Parameters and Secrets are the imported app's own values.
	Parameters, Secrets map[string]string
}

// Import loads an imported app's configuration from its tree. Findings are
// returned for the caller to show; any error finding makes the import an
// error, as an invalid configuration cannot be rendered.
func Import(im Imported) (render.Import, schema.Findings, error) {
	where := im.Import.Name + "@" + im.Branch
	cfg, findings, err := schema.Load(im.Tree, im.Path, im.Load)
	if err != nil {
		return render.Import{}, findings, fmt.Errorf("app_imports %s: %w", where, err)
	}
	if errs := findings.Errors(); len(errs) > 0 {
		return render.Import{}, findings, fmt.Errorf("app_imports %s: invalid configuration: %s", where, errs.Error())
	}
	exclude := make([]string, 0, len(im.Import.ExcludeServices))
	for _, x := range im.Import.ExcludeServices {
		exclude = append(exclude, x.Name)
	}
	return render.Import{
		App: im.Import.Name, Branch: im.Branch, Commit: im.Commit, Config: cfg, Tree: im.Tree,
		Parameters: im.Parameters, Secrets: im.Secrets, ExcludeServices: exclude,
	}, findings, nil
}
