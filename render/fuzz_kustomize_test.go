package render

import (
	"io/fs"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
)

// FuzzKustomize builds arbitrary kustomizations over an in-memory repository
// whose other files are fuzzed too: a resource, a base's kustomization, and
// a file under a fuzzed name. The render must end with objects or an error,
// never panic outside krusty, never hang past the build's time limit, and
// never open a connection — the seeds name a loopback listener the target
// counts connections to, in every form kustomize could fetch from.
func FuzzKustomize(f *testing.F) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	u := "http://" + ln.Addr().String()
	for _, s := range []struct{ kust, res, base, name, file string }{
		{"resources: [cm.yaml]", cm, "", "x", ""},
		{"resources: [cm.yaml, base]\nnamePrefix: p-", cm, "resources: [../cm.yaml]", "x", ""},
		{"resources: [" + u + "/cm.yaml]", cm, "", "x", ""},
		{"configMapGenerator: [{name: g, files: ['k=" + strings.ToUpper(u) + "/x']}]", cm, "", "x", ""},
		{"patches: [{path: 'HTTP://" + ln.Addr().String() + "/p.yaml'}]", cm, "", "x", ""},
		{"resources: [base]", cm, "resources: ['git::" + u + "/r.git']", "x", ""},
		{"resources: [cm.yaml]\npatchesStrategicMerge: [x]", cm, "", "x", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {z: y}\n"},
		{"secretGenerator: [{name: s, envs: [x]}]", cm, "", "x", "A=1\nB=2\n"},
		{"resources: [github.com/o/r]", cm, "", "github.com/o/r/kustomization.yaml", "resources: [../../../cm.yaml]"},
		{"resources: [cm.yaml]", "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "", "x", ""},
		{"components: [base]", cm, "kind: Component\napiVersion: kustomize.config.k8s.io/v1alpha1\nreplacements: [{path: ../x}]", "x", "- source: {kind: ConfigMap, name: c}\n  targets: []\n"},
	} {
		f.Add(s.kust, s.res, s.base, s.name, s.file)
	}
	f.Fuzz(func(t *testing.T, kust, res, base, name, file string) {
		tree := fstest.MapFS{
			"k/kustomization.yaml":      {Data: []byte(kust)},
			"k/cm.yaml":                 {Data: []byte(res)},
			"k/base/kustomization.yaml": {Data: []byte(base)},
		}
		if fsName := "k/" + name; name != "" && validMapFSName(fsName) {
			tree[fsName] = &fstest.MapFile{Data: []byte(file)}
		}
		env, err := Render(Input{Config: configFrom(t, "kustomize: [{path: k}]", ""), Tree: tree,
			Context: Context{App: "a", Branch: "b", Kustomize: KustomizeLimits{MaxFileBytes: 64 << 10, MaxTotalBytes: 256 << 10}}})
		if n := conns.Load(); n != 0 {
			t.Fatalf("%d connections reached the loopback server (render: %v)", n, err)
		}
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "internal error") || strings.Contains(msg, "(kustomize.timeout)") {
				t.Fatal(err)
			}
			return
		}
		if len(env.Objects) == 0 || env.Objects[0].GetKind() != "Namespace" {
			t.Fatal("no error and no Namespace first")
		}
		for _, o := range env.Objects[1:] {
			if o.GetNamespace() != env.Namespace {
				t.Fatalf("%s/%s in namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), env.Namespace)
			}
		}
	})
}

// validMapFSName reports whether p can be a file of an fstest.MapFS next to
// the fixed files: a valid path that is not one of them nor under a file.
func validMapFSName(p string) bool {
	if !fs.ValidPath(p) {
		return false
	}
	for _, fixed := range []string{"k/kustomization.yaml", "k/cm.yaml", "k/base", "k/base/kustomization.yaml"} {
		if p == fixed || strings.HasPrefix(p, fixed+"/") || strings.HasPrefix(fixed, p+"/") {
			return false
		}
	}
	return true
}
