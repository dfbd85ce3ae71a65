package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/arbordev/arbor/internal/buildkittest"
)

// testBuilder is a Builder on the test buildkitd pushing to the test
// registry, under a repository prefix of the test's own.
func testBuilder(t *testing.T, mod func(*BuilderOptions)) (*Builder, string) {
	t.Helper()
	reg := buildkittest.Registry(t)
	opts := BuilderOptions{
		Addr:                  buildkittest.Addr(t),
		Registry:              reg + "/" + buildkittest.Repository(t),
		PlainHTTP:             true,
		AllowedBaseRegistries: []string{reg},
		Timeout:               5 * time.Minute,
		WorkDir:               t.TempDir(),
	}
	if mod != nil {
		mod(&opts)
	}
	b, err := NewBuilder(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, opts.Registry
}

// tree is a commit tree with one service under svc/.
func tree(dockerfile string, files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{"svc/Dockerfile": {Data: []byte(dockerfile), Mode: 0o644}}
	for p, d := range files {
		fsys["svc/"+p] = &fstest.MapFile{Data: []byte(d), Mode: 0o644}
	}
	return fsys
}

func request(t *testing.T, fsys fstest.MapFS) Request {
	t.Helper()
	key, err := ContextHash(fsys, "svc")
	if err != nil {
		t.Fatal(err)
	}
	return Request{Repository: "web", Source: fsys, Context: "svc", ContextKey: key}
}

func build(t *testing.T, b *Builder, req Request) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := b.Build(ctx, req)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if !strings.Contains(res.Ref, "@sha256:") || !strings.HasSuffix(res.Ref, res.Digest) {
		t.Fatalf("result %+v: not pinned by digest", res)
	}
	return res
}

// fileIn returns the content of path in the image ref, read back from the registry.
func fileIn(t *testing.T, ref, path string) (string, bool) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") == path {
			b, _ := io.ReadAll(tr)
			return string(b), true
		}
	}
}

func TestBuildScratchCopy(t *testing.T) {
	b, _ := testBuilder(t, nil)
	fsys := tree("FROM scratch\nCOPY hello.txt /hello.txt\n", map[string]string{"hello.txt": "hello from the branch\n"})
	res := build(t, b, request(t, fsys))
	if !res.Built || b.Solves() != 1 {
		t.Fatalf("built=%v solves=%d, want a build", res.Built, b.Solves())
	}
	if got, ok := fileIn(t, res.Ref, "hello.txt"); !ok || got != "hello from the branch\n" {
		t.Fatalf("hello.txt in %s = %q (found %v)", res.Ref, got, ok)
	}
}

func TestBuildRunStepOnBaseImage(t *testing.T) {
	b, prefix := testBuilder(t, nil)
	base := buildkittest.BaseImage(t, prefix+"/base")
	// NONCE makes the RUN step new to buildkitd's cache: a cached step
	// prints nothing, and the log below needs its output.
	fsys := tree("ARG BASE\nFROM ${BASE}\nARG GREETING=hi\nARG NONCE\nRUN echo \"$GREETING from RUN\" > /out.txt && cat /out.txt\n", nil)
	req := request(t, fsys)
	req.Args = map[string]string{"BASE": base, "GREETING": "hello", "NONCE": time.Now().Format(time.RFC3339Nano)}
	res := build(t, b, req)
	if got, ok := fileIn(t, res.Ref, "out.txt"); !ok || got != "hello from RUN\n" {
		t.Fatalf("out.txt in %s = %q (found %v)", res.Ref, got, ok)
	}
	// The build's log: each step, and what the RUN step printed.
	log := strings.Join(res.Log, "\n")
	if !strings.Contains(log, "RUN echo") || !strings.Contains(log, "  hello from RUN") {
		t.Errorf("build log %q: want the RUN step and its output", res.Log)
	}
}

func TestBuildOnceByContentKey(t *testing.T) {
	b, _ := testBuilder(t, nil)
	fsys := tree("FROM scratch\nCOPY a.txt /a.txt\n", map[string]string{"a.txt": "a"})
	first := build(t, b, request(t, fsys))

	// Another commit with the same context, Dockerfile and args: nothing built.
	again := build(t, b, request(t, fsys))
	if again.Built || b.Solves() != 1 || again.Ref != first.Ref {
		t.Fatalf("second build of unchanged inputs: built=%v solves=%d ref %s (first %s)", again.Built, b.Solves(), again.Ref, first.Ref)
	}
	// A file outside the context changes nothing either.
	fsys["README.md"] = &fstest.MapFile{Data: []byte("docs")}
	if r := build(t, b, request(t, fsys)); r.Built || b.Solves() != 1 {
		t.Fatalf("change outside the context: built=%v solves=%d", r.Built, b.Solves())
	}
	// Each input of the key makes a new image.
	fsys["svc/a.txt"] = &fstest.MapFile{Data: []byte("b")}
	changed := build(t, b, request(t, fsys))
	withArg := request(t, fsys)
	withArg.Args = map[string]string{"X": "1"}
	argRes := build(t, b, withArg)
	if !changed.Built || !argRes.Built || b.Solves() != 3 || changed.Tag == first.Tag || argRes.Tag == changed.Tag {
		t.Fatalf("changed context / args: built %v %v, solves=%d, tags %s %s %s", changed.Built, argRes.Built, b.Solves(), first.Tag, changed.Tag, argRes.Tag)
	}
	// The edit kept the file's size: the new image has the new content all the same.
	if got, _ := fileIn(t, changed.Ref, "a.txt"); got != "b" {
		t.Fatalf("a.txt after the edit = %q, want b", got)
	}
}

func TestBuildConcurrentRequestsShareOneBuild(t *testing.T) {
	b, _ := testBuilder(t, nil)
	fsys := tree("FROM scratch\nCOPY a.txt /a.txt\n", map[string]string{"a.txt": "shared"})
	const n = 4
	results := make([]Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = build(t, b, request(t, fsys))
		}()
	}
	wg.Wait()
	if b.Solves() != 1 {
		t.Fatalf("%d concurrent identical builds ran %d solves, want 1", n, b.Solves())
	}
	for _, r := range results[1:] {
		if r.Ref == "" || r.Ref != results[0].Ref {
			t.Fatalf("results differ: %+v", results)
		}
	}
}

func TestBuildFailingRunNamesStepAndLog(t *testing.T) {
	b, prefix := testBuilder(t, nil)
	base := buildkittest.BaseImage(t, prefix+"/base")
	df := "FROM " + base + "\nRUN echo preparing\nRUN for i in $(seq 1 40); do echo line $i; done; echo the final words; exit 3\n"
	_, err := b.Build(context.Background(), request(t, tree(df, nil)))
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("error %v (%T), want a *BuildError", err, err)
	}
	if !strings.Contains(be.Step, "RUN for i in") {
		t.Errorf("step %q, want the failing RUN", be.Step)
	}
	// One stream only: BuildKit flushes stdout and stderr separately, so how
	// lines of the two interleave in the tail is not fixed.
	if len(be.Log) != DefaultLogTail || be.Log[len(be.Log)-1] != "the final words" || be.Log[0] != "line 22" {
		t.Errorf("log tail %q: want the last %d lines, ending in the final words", be.Log, DefaultLogTail)
	}
	if !strings.Contains(be.Reason, "exit code: 3") {
		t.Errorf("reason %q, want the exit code", be.Reason)
	}
	t.Logf("error as shown:\n%v", err)
}

func TestBuildRunHasNoNetwork(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "reached")
	}))
	defer srv.Close()
	b, prefix := testBuilder(t, nil)
	base := buildkittest.BaseImage(t, prefix+"/base")
	// busybox's nc, not wget: the static wget crashes looking up the "http"
	// service without the host's NSS libraries.
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	df := "FROM " + base + "\nRUN printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 " + strings.Replace(hostPort, ":", " ", 1) + " > /got && grep -q reached /got\n"
	_, err := b.Build(context.Background(), request(t, tree(df, nil)))
	if err == nil || hits.Load() != 0 {
		t.Fatalf("a RUN step reached %s (hits %d, error %v): builds must have no network", srv.URL, hits.Load(), err)
	}
	t.Logf("refused as: %v", err)
}

func TestBuildTimeout(t *testing.T) {
	b, prefix := testBuilder(t, func(o *BuilderOptions) { o.Timeout = 3 * time.Second })
	base := buildkittest.BaseImage(t, prefix+"/base")
	// A step of its own (BuildKit caches a step that once finished).
	df := fmt.Sprintf("FROM %s\nRUN echo %d && sleep 60\n", base, time.Now().UnixNano())
	_, err := b.Build(context.Background(), request(t, tree(df, nil)))
	var be *BuildError
	if !errors.As(err, &be) || !strings.Contains(be.Reason, "did not finish within 3s") {
		t.Fatalf("error %v, want the build timeout", err)
	}
}

// TestSourcePolicyDeniesForeignBase checks BuildKit's own enforcement, with
// the static Dockerfile check out of the way: a base image from a registry
// not allowed is denied by the source policy.
func TestSourcePolicyDeniesForeignBase(t *testing.T) {
	b, prefix := testBuilder(t, nil)
	base := buildkittest.BaseImage(t, prefix+"/base")
	b.allowed = allowList{"index.docker.io/library/busybox"}
	in := input{
		req:        request(t, tree("FROM "+base+"\nRUN true\n", nil)),
		tag:        prefix + "/web:policy",
		context:    "svc",
		dockerfile: []byte("FROM " + base + "\nRUN true\n"),
	}
	_, _, err := b.solve(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), "denied by policy") {
		t.Fatalf("error %v, want the source policy's denial", err)
	}
}

func TestBuildRefusesBeforeBuilding(t *testing.T) {
	b, _ := testBuilder(t, nil)
	for df, want := range map[string]string{
		"FROM scratch\nFROM evil.example.com/x\n":            "svc/Dockerfile:2: FROM evil.example.com/x",
		"FROM scratch\nADD http://example.com/a.tgz /a\n":    "svc/Dockerfile:2: ADD http://example.com/a.tgz",
		"# syntax=example.com/frontend\nFROM scratch\n":      "svc/Dockerfile:1: syntax directive",
		"FROM scratch\nCOPY --from=evil.example.com/x / /\n": "svc/Dockerfile:2: COPY --from evil.example.com/x",
	} {
		_, err := b.Build(context.Background(), request(t, tree(df, nil)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Dockerfile %q: error %v, want %q", df, err, want)
		}
	}
	fsys := tree("FROM scratch\nCOPY . /\n", nil)
	fsys["svc/escape"] = &fstest.MapFile{Data: []byte("../../etc/passwd"), Mode: fs.ModeSymlink}
	if _, err := b.Build(context.Background(), Request{Repository: "web", Source: fsys, Context: "svc", ContextKey: "k"}); err == nil || !strings.Contains(err.Error(), "escape: symbolic link to ../../etc/passwd leaves the build context") {
		t.Errorf("link out of the context: %v", err)
	}
	if b.Solves() != 0 {
		t.Fatalf("%d builds reached BuildKit, want none", b.Solves())
	}
}

// TestBuildPushesWithDockerConfigCredentials builds for a registry that wants
// a login: BuildKit pushes with the docker-config credentials through the
// build's session; without them the push fails and the error names no secret.
func TestBuildPushesWithDockerConfigCredentials(t *testing.T) {
	const user, pass = "arbor", "push-s3cret"
	reg, config := htpasswdRegistry(t, user, pass)
	creds, err := ParseDockerConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	fsys := tree("FROM scratch\nCOPY a.txt /a.txt\n", map[string]string{"a.txt": "private"})
	b, _ := testBuilder(t, func(o *BuilderOptions) { o.Registry, o.Credentials = reg+"/shop", creds })
	res := build(t, b, request(t, fsys))
	if !res.Built {
		t.Fatalf("not built: %+v", res)
	}
	anon, _ := testBuilder(t, func(o *BuilderOptions) { o.Registry = reg + "/other" })
	_, err = anon.Build(context.Background(), request(t, fsys))
	if err == nil || strings.Contains(err.Error(), pass) {
		t.Fatalf("push without credentials: %v", err)
	}
	t.Logf("without credentials: %v", err)
}

// TestBuildOverMutualTLS builds through a buildkitd that speaks mutual TLS
// on TCP, as deploy/buildkitd can; without arbor's client certificate the
// daemon refuses the connection.
func TestBuildOverMutualTLS(t *testing.T) {
	d := buildkittest.StartTLSBuildkitd(t)
	fsys := tree("FROM scratch\nCOPY a.txt /a.txt\n", map[string]string{"a.txt": "over tls"})
	b, _ := testBuilder(t, func(o *BuilderOptions) {
		o.Addr, o.TLS = d.Addr, &TLSFiles{CA: d.CA, Cert: d.ClientCert, Key: d.ClientKey}
	})
	if res := build(t, b, request(t, fsys)); !res.Built {
		t.Fatalf("not built: %+v", res)
	}
	noCert, _ := testBuilder(t, func(o *BuilderOptions) { o.Addr, o.TLS = d.Addr, &TLSFiles{CA: d.CA} })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := noCert.Build(ctx, request(t, fsys)); err == nil {
		t.Fatal("a client without a certificate was served")
	} else {
		t.Logf("without a client certificate: %v", err)
	}
}

func TestBuildConcurrencyIsBounded(t *testing.T) {
	b, prefix := testBuilder(t, func(o *BuilderOptions) { o.MaxConcurrent = 1 })
	base := buildkittest.BaseImage(t, prefix+"/base")
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			df := fmt.Sprintf("FROM %s\nRUN sleep 1 && echo %d > /n\n", base, i)
			_, errs[i] = b.Build(context.Background(), request(t, tree(df, nil)))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if b.Solves() != 3 || b.peak.Load() != 1 {
		t.Fatalf("%d builds, at most %d at once; want 3, one at a time", b.Solves(), b.peak.Load())
	}
}
