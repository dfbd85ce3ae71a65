package render

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/arbordev/arbor/internal/repofs"
)

// TestConfigMapFilesRefused: configmap files are read under repofs's rules
// whatever fs.FS holds the tree: a special file is refused without a read,
// and no more than a ConfigMap holds is read, from one file or a directory.
func TestConfigMapFilesRefused(t *testing.T) {
	const tmpl = "services: [{name: web, image: nginx, configmap: [{name: c, mount_path: /etc/c, repo_path: %s}]}]"
	mib := strings.Repeat("x", 1<<20)
	tree := fstest.MapFS{
		"fifo":      {Mode: fs.ModeNamedPipe, Data: []byte("SHOULD-NOT-BE-READ")},
		"dev":       {Mode: fs.ModeDevice | fs.ModeCharDevice, Data: []byte("SHOULD-NOT-BE-READ")},
		"big":       {Data: []byte(mib + "x")},
		"dir/a":     {Data: []byte(mib[:600<<10])},
		"dir/b":     {Data: []byte(mib[:600<<10])},
		"fits/a":    {Data: []byte(mib[:512<<10])},
		"fits/b":    {Data: []byte(mib[:512<<10])},
		"fits/skip": {Mode: fs.ModeNamedPipe},
		"exact1MiB": {Data: []byte(mib)},
	}
	for path, want := range map[string]error{
		"fifo": repofs.ErrNotRegular, "dev": repofs.ErrNotRegular,
		"big": repofs.ErrTooLarge, "dir": repofs.ErrTooLarge,
		"fits": nil, "exact1MiB": nil,
	} {
		cfg := configFrom(t, strings.ReplaceAll(tmpl, "%s", path), "")
		env, err := Render(Input{Config: cfg, Tree: tree, Context: Context{App: "a", Branch: "main"}})
		if want == nil {
			if err != nil {
				t.Errorf("%s: %v", path, err)
			}
			continue
		}
		if !errors.Is(err, want) || !strings.Contains(err.Error(), `configmap[0].repo_path "`+path+`"`) {
			t.Errorf("%s: render = %v; want %v naming the field", path, err, want)
		}
		if env != nil {
			t.Errorf("%s: got an environment", path)
		}
	}
}
