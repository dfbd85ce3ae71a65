package render

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// renderKust renders an app whose only content is the kustomize directory k
// of tree.
func renderKust(t *testing.T, tree fs.FS, lim KustomizeLimits) (*Environment, error) {
	t.Helper()
	return Render(Input{Config: configFrom(t, "kustomize: [{path: k}]", ""), Tree: tree,
		Context: Context{App: "a", Branch: "b", Kustomize: lim}})
}

const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n"

// silentServer is a loopback TCP server that records every connection and
// never answers: HTTP, TLS, git and ssh clients all hang on it.
type silentServer struct {
	ln    net.Listener
	conns atomic.Int64
	mu    sync.Mutex
	open  []net.Conn
}

func newSilentServer(t *testing.T) *silentServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.mu.Lock()
			s.open = append(s.open, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.closeAll)
	return s
}

// closeAll stops listening and closes every connection accepted.
func (s *silentServer) closeAll() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.open {
		c.Close()
	}
}

// TestKustomizeNeverReachesTheNetwork renders kustomizations naming a
// loopback server in every way kustomize could fetch from it — resources,
// bases, components, generator files and env files, patches of every kind,
// replacements, crds, configurations, openapi, remote git bases in each URL
// form, plugins and helm, upper-case schemes and keys, and a local base that
// does it — and checks that each render fails with an error naming the
// field while no connection reaches the server.
func TestKustomizeNeverReachesTheNetwork(t *testing.T) {
	srv := newSilentServer(t)
	u := "http://" + srv.ln.Addr().String()
	upper := "HTTP://" + srv.ln.Addr().String()
	hostPort := srv.ln.Addr().String()
	cases := map[string]string{
		"resource":                   "resources: [" + u + "/cm.yaml]",
		"resource upper case":        "resources: [" + upper + "/cm.yaml]",
		"RESOURCES key":              "RESOURCES: [" + u + "/cm.yaml]",
		"https resource":             "resources: [https://" + hostPort + "/cm.yaml]",
		"git over http":              "resources: ['" + u + "/org/repo.git//k?ref=main']",
		"git:: prefix":               "resources: ['git::" + u + "/org/repo.git']",
		"ssh git":                    "resources: ['ssh://git@" + hostPort + "/org/repo.git']",
		"scp git":                    "resources: ['git@127.0.0.1:org/repo.git']",
		"file git":                   "resources: ['file:///etc']",
		"base":                       "bases: [" + u + "/base]",
		"component":                  "components: [" + u + "/comp]",
		"configmap file key=url":     "configMapGenerator: [{name: g, files: ['key=" + u + "/latest/meta-data']}]",
		"configmap file upper":       "configMapGenerator: [{name: g, files: ['" + upper + "/meta-data']}]",
		"configmap envs":             "configMapGenerator: [{name: g, envs: ['" + u + "/env']}]",
		"secret file":                "secretGenerator: [{name: g, files: ['key=" + u + "/token']}]",
		"secret env":                 "secretGenerator: [{name: g, env: '" + u + "/env'}]",
		"patch path":                 "patches: [{path: '" + upper + "/p.yaml'}]",
		"patchesStrategicMerge":      "patchesStrategicMerge: ['" + upper + "/p.yaml']",
		"patchesJson6902":            "patchesJson6902: [{path: '" + u + "/p.json', target: {kind: ConfigMap, name: c}}]",
		"replacements":               "replacements: [{path: '" + u + "/r.yaml'}]",
		"crds":                       "crds: ['" + u + "/crd.yaml']",
		"configurations":             "configurations: ['" + u + "/c.yaml']",
		"openapi":                    "openapi: {path: '" + u + "/schema.json'}",
		"transformer file":           "transformers: ['" + u + "/t.yaml']",
		"inline transformer":         "transformers: ['{apiVersion: builtin, kind: PatchTransformer, metadata: {name: p}, path: \"" + u + "/p.yaml\"}']",
		"generator":                  "generators: ['" + u + "/g.yaml']",
		"validator":                  "validators: ['" + u + "/v.yaml']",
		"helm chart":                 "helmCharts: [{name: x, repo: '" + u + "'}]",
		"through a local base":       "resources: [base]",
		"through a local component":  "components: [comp]",
		"resource with a local name": "resources: [cm.yaml, '" + u + "/cm.yaml']",
	}
	for name, kust := range cases {
		t.Run(name, func(t *testing.T) {
			tree := fstest.MapFS{
				"k/kustomization.yaml": {Data: []byte(kust + "\n")},
				"k/cm.yaml":            {Data: []byte(cm)},
			}
			// Only the cases that name them have the local base and component.
			if strings.Contains(kust, "[base]") {
				tree["k/base/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources: ['" + upper + "/cm.yaml']\n")}
			}
			if strings.Contains(kust, "[comp]") {
				tree["k/comp/kustomization.yaml"] = &fstest.MapFile{Data: []byte("kind: Component\napiVersion: kustomize.config.k8s.io/v1alpha1\nconfigMapGenerator: [{name: g, files: ['k=" + u + "/x']}]\n")}
			}
			_, err := renderKust(t, tree, KustomizeLimits{Timeout: 20 * time.Second})
			if n := srv.conns.Load(); n != 0 {
				t.Fatalf("%d connections reached the loopback server (render: %v)", n, err)
			}
			if err == nil {
				t.Fatal("render succeeded")
			}
			if strings.Contains(err.Error(), "kustomize.timeout") {
				t.Fatalf("render hung until the timeout: %v", err)
			}
			t.Log(err)
		})
	}
}

// TestKustomizeLocalPathsThatLookRemote checks a base in a directory named
// like a GitHub repository is read from the repository: kustomize alone would
// clone it from github.com.
func TestKustomizeLocalPathsThatLookRemote(t *testing.T) {
	tree := fstest.MapFS{
		"k/kustomization.yaml":                     {Data: []byte("resources: [github.com/org/repo]\nconfigMapGenerator: [{name: g, files: [github.com/org/repo/cm.yaml]}]\n")},
		"k/github.com/org/repo/kustomization.yaml": {Data: []byte("resources: [cm.yaml]\n")},
		"k/github.com/org/repo/cm.yaml":            {Data: []byte(cm)},
	}
	env, err := renderKust(t, tree, KustomizeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range env.Objects[1:] {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "ConfigMap/c") || !strings.Contains(got, "ConfigMap/g-") {
		t.Fatalf("objects %s, want ConfigMap/c and the generated ConfigMap/g-<hash>", got)
	}
}

// laughs is a billion-laughs YAML document of about 600 bytes: expanded, it
// is 10^9 strings.
func laughs(first string) string {
	var b strings.Builder
	b.WriteString(first)
	b.WriteString("a0: &a0 [lol]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	return b.String()
}

// TestKustomizeAliasBombs renders kustomizations that hand kustomize a
// billion-laughs document in every place kustomize parses YAML, and checks
// each fails with an error naming the file, while a bomb used as generator
// data is only data. The cases run in a child process whose address space
// is limited to 2 GiB (1 GiB is too little for the Go runtime to start reliably): expanding one bomb needs tens of GiB, so a regression
// is a crash of the child, which fails this test.
func TestKustomizeAliasBombs(t *testing.T) {
	switch os.Getenv("ARBOR_TEST_ALIAS_BOMB_CHILD") {
	case "":
		cmd := exec.Command(os.Args[0], "-test.run=^TestKustomizeAliasBombs$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "ARBOR_TEST_ALIAS_BOMB_CHILD=limit")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestKustomizeAliasBombs") {
			t.Fatalf("child under a 2 GiB address-space limit: %v\n%s", err, out)
		}
		t.Logf("child:\n%s", out)
		return
	case "limit":
		// The Go runtime sizes its reservations at start: the limit must be
		// in place before the process image starts, hence the second exec.
		const limit = 2 << 30
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
			t.Fatal(err)
		}
		env := []string{"ARBOR_TEST_ALIAS_BOMB_CHILD=run"}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "ARBOR_TEST_ALIAS_BOMB_CHILD=") {
				env = append(env, kv)
			}
		}
		t.Fatal(syscall.Exec(os.Args[0], os.Args, env))
	}
	obj := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
	bomb := laughs(obj) // a ConfigMap with the bomb in extra keys
	var manyDocs strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&manyDocs, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c%d}\ndata:\n  a: &a \"%s\"\n  b: &b [%s]\n", i, strings.Repeat("x", 1000), strings.Repeat("*a,", 9)+"*a")
		fmt.Fprintf(&manyDocs, "  c: &c [%s]\n  d: [%s]\n", strings.Repeat("*b,", 9)+"*b", strings.Repeat("*c,", 9)+"*c")
	}
	cases := []struct {
		name  string
		files map[string]string
		want  string // "" means the render succeeds
	}{
		{"resource", map[string]string{"k/kustomization.yaml": "resources: [bomb.yaml]", "k/bomb.yaml": bomb}, "k/bomb.yaml:"},
		{"documents that share the budget", map[string]string{"k/kustomization.yaml": "resources: [many.yaml]", "k/many.yaml": manyDocs.String()}, "k/many.yaml:"},
		{"kustomization", map[string]string{"k/kustomization.yaml": laughs("resources: [cm.yaml]\n")}, "k/kustomization.yaml:"},
		{"base kustomization", map[string]string{"k/kustomization.yaml": "resources: [base]", "k/base/kustomization.yaml": laughs("")}, "k/base/kustomization.yaml:"},
		{"patch file", map[string]string{"k/kustomization.yaml": "resources: [cm.yaml]\npatches: [{path: bomb.yaml}]", "k/bomb.yaml": bomb}, "k/bomb.yaml:"},
		{"strategic merge file", map[string]string{"k/kustomization.yaml": "resources: [cm.yaml]\npatchesStrategicMerge: [bomb.yaml]", "k/bomb.yaml": bomb}, "k/bomb.yaml:"},
		{"inline patch", map[string]string{"k/kustomization.yaml": "resources: [cm.yaml]\npatches:\n- patch: |\n" + indent(bomb)}, "patches[0].patch:"},
		{"inline strategic merge", map[string]string{"k/kustomization.yaml": "resources: [cm.yaml]\npatchesStrategicMerge:\n- |\n" + indent(bomb)}, "patchesStrategicMerge[0]:"},
		{"json6902 patch", map[string]string{"k/kustomization.yaml": "resources: [cm.yaml]\npatchesJson6902: [{path: bomb.yaml, target: {kind: ConfigMap, name: c}}]", "k/bomb.yaml": laughs("")}, "k/bomb.yaml:"},
		{"replacements", map[string]string{"k/kustomization.yaml": "resources: [cm.yaml]\nreplacements: [{path: bomb.yaml}]", "k/bomb.yaml": laughs("")}, "k/bomb.yaml:"},
		{"crds", map[string]string{"k/kustomization.yaml": "resources: [cm.yaml]\ncrds: [bomb.yaml]", "k/bomb.yaml": laughs("")}, "k/bomb.yaml:"},
		{"configurations", map[string]string{"k/kustomization.yaml": "resources: [cm.yaml]\nconfigurations: [bomb.yaml]", "k/bomb.yaml": laughs("")}, "k/bomb.yaml:"},
		{"openapi", map[string]string{"k/kustomization.yaml": "resources: [cm.yaml]\nopenapi: {path: bomb.yaml}", "k/bomb.yaml": laughs("")}, "k/bomb.yaml:"},
		{"generator data", map[string]string{"k/kustomization.yaml": "configMapGenerator: [{name: g, files: [bomb.yaml]}]", "k/bomb.yaml": laughs("")}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tree := fstest.MapFS{"k/cm.yaml": {Data: []byte(cm)}}
			for p, s := range tc.files {
				tree[p] = &fstest.MapFile{Data: []byte(s + "\n")}
			}
			env, err := renderKust(t, tree, KustomizeLimits{})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				data, _ := env.Objects[1].Object["data"].(map[string]any)
				if data["bomb.yaml"] != tc.files["k/bomb.yaml"]+"\n" {
					t.Fatalf("generated ConfigMap holds %v, want the file as data", env.Objects[1].Object["data"])
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "too large or too deeply nested") {
				t.Fatalf("render error %v, want one naming %q and the alias budget", err, tc.want)
			}
		})
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ")
}

// openRecorder is a file system that records the files opened.
type openRecorder struct {
	fs.FS
	mu     sync.Mutex
	opened []string
}

func (r *openRecorder) Open(name string) (fs.File, error) {
	r.mu.Lock()
	r.opened = append(r.opened, name)
	r.mu.Unlock()
	return r.FS.Open(name)
}

// ReadLink and Lstat keep fs.Lstat seeing links through the recorder.
func (r *openRecorder) ReadLink(name string) (string, error)   { return fs.ReadLink(r.FS, name) }
func (r *openRecorder) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(r.FS, name) }

// sparse writes a file of size bytes that takes no space on disk.
func sparse(t *testing.T, p string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKustomizeReadsOnlyWhatItReferences puts 60 sparse files of 8 MiB next
// to a one-line kustomization, in its directory and around it: the render
// succeeds without opening any of them.
func TestKustomizeReadsOnlyWhatItReferences(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "k/kustomization.yaml"), "resources: [cm.yaml]\n")
	writeFile(t, filepath.Join(dir, "k/cm.yaml"), cm)
	for i := 0; i < 60; i++ {
		sparse(t, filepath.Join(dir, []string{"k", "k/sub", "."}[i%3], fmt.Sprintf("big%d.yaml", i)), 8<<20)
	}
	tree := &openRecorder{FS: os.DirFS(dir)}
	env, err := renderKust(t, tree, KustomizeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Objects) != 2 {
		t.Fatalf("got %d objects, want the Namespace and the ConfigMap", len(env.Objects))
	}
	for _, p := range tree.opened {
		if strings.Contains(p, "big") {
			t.Errorf("opened %s, which the kustomization does not reference", p)
		}
	}
	if strings.Join(tree.opened, " ") != "k/kustomization.yaml k/cm.yaml" {
		t.Errorf("opened %v, want k/kustomization.yaml and k/cm.yaml", tree.opened)
	}
}

// TestKustomizeSizeLimits checks a referenced file over the per-file limit
// and files over the per-render total are refused, naming the file and the
// limit, with the defaults and with limits given in the Context.
func TestKustomizeSizeLimits(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "k/kustomization.yaml"), "resources: [cm.yaml, big.yaml]\n")
	writeFile(t, filepath.Join(dir, "k/cm.yaml"), cm)
	sparse(t, filepath.Join(dir, "k/big.yaml"), 1<<30)
	writeFile(t, filepath.Join(dir, "t/k/kustomization.yaml"), "configMapGenerator: [{name: g, files: [a.bin, b.bin, c.bin]}]\n")
	for _, n := range []string{"a", "b", "c"} {
		sparse(t, filepath.Join(dir, "t/k", n+".bin"), 3<<20)
	}
	tree := os.DirFS(dir)
	for _, tc := range []struct {
		name string
		tree fs.FS
		lim  KustomizeLimits
		want []string
	}{
		{"one file, default limit", tree, KustomizeLimits{}, []string{"k/big.yaml: 1073741824 bytes, over the limit of 4194304 bytes for one file a kustomization reads (kustomize.max_file_size)"}},
		{"one file, configured", mustSub(t, tree, "t"), KustomizeLimits{MaxFileBytes: 1 << 20}, []string{"k/a.bin: 3145728 bytes, over the limit of 1048576 bytes"}},
		{"in total", mustSub(t, tree, "t"), KustomizeLimits{MaxTotalBytes: 8 << 20}, []string{"k/c.bin: reading it brings the files read for kustomize in this render to 94372", "over the limit of 8388608 bytes (kustomize.max_total_size)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderKust(t, tc.tree, tc.lim)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("render error %v, want %q", err, w)
				}
			}
		})
	}
	if _, err := renderKust(t, mustSub(t, tree, "t"), KustomizeLimits{}); err != nil {
		t.Fatalf("9 MiB of generator files within the default limits: %v", err)
	}
}

func mustSub(t *testing.T, fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// TestKustomizeTimeout checks a build over its time limit ends the render
// with an error naming the limit, and that later builds still run.
func TestKustomizeTimeout(t *testing.T) {
	tree := fstest.MapFS{
		"k/kustomization.yaml": {Data: []byte("resources: [cm.yaml]\n")},
		"k/cm.yaml":            {Data: []byte(cm)},
	}
	_, err := renderKust(t, tree, KustomizeLimits{Timeout: time.Nanosecond})
	if err == nil || !strings.Contains(err.Error(), "(kustomize.timeout)") {
		t.Fatalf("render error %v, want the timeout", err)
	}
	if _, err := renderKust(t, tree, KustomizeLimits{}); err != nil {
		t.Fatalf("the build after a timed-out one: %v", err)
	}
}

// TestKustomizeBuildHungOnTheNetworkEnds hands krusty itself, past arbor's
// checks, a kustomization whose resource is on a loopback server that never
// answers: the build must end with an error naming the time limit, the next
// build must fail the same way rather than wait for the slot forever, and
// once the hung build returns the builds after it run again.
func TestKustomizeBuildHungOnTheNetworkEnds(t *testing.T) {
	srv := newSilentServer(t)
	mem := filesys.MakeFsInMemory()
	if err := mem.WriteFile("/k/kustomization.yaml", []byte("resources: [http://"+srv.ln.Addr().String()+"/cm.yaml]\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := buildKustomize(mem, "/k", time.Second); err == nil || !strings.Contains(err.Error(), "did not finish within 1s (kustomize.timeout)") {
		t.Fatalf("hung build: %v, want the time limit", err)
	}
	if srv.conns.Load() == 0 {
		t.Fatal("the build did not reach the server: the test proves nothing")
	}
	good := filesys.MakeFsInMemory()
	if err := good.WriteFile("/k/kustomization.yaml", []byte("resources: [cm.yaml]\n")); err != nil {
		t.Fatal(err)
	}
	if err := good.WriteFile("/k/cm.yaml", []byte(cm)); err != nil {
		t.Fatal(err)
	}
	if _, err := buildKustomize(good, "/k", time.Second); err == nil || !strings.Contains(err.Error(), "another kustomize build still runs after 1s (kustomize.timeout)") {
		t.Fatalf("build behind the hung one: %v, want the time limit", err)
	}
	srv.closeAll() // the hung GET fails, krusty returns, the slot is free
	if objs, err := buildKustomize(good, "/k", time.Minute); err != nil || len(objs) != 1 {
		t.Fatalf("build after the hung one returned: %d objects, %v", len(objs), err)
	}
}
