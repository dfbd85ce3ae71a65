// Package buildkittest connects image tests to the real BuildKit daemon and
// registry that `make test` starts (hack/buildkit.sh), starts registries of a
// test's own (with notifications sent where the test says), and makes the
// small base image RUN steps need.
//
// Under `go test -short` the tests that need them are skipped; otherwise a
// missing buildkitd or registry fails the test, so that CI never passes by
// skipping.
package buildkittest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Variables `make test` sets (the last line of `hack/buildkit.sh up`).
const (
	EnvAddr        = "ARBOR_TEST_BUILDKIT_ADDR"
	EnvRegistry    = "ARBOR_TEST_REGISTRY"
	EnvRegistryBin = "ARBOR_TEST_REGISTRY_BIN"
)

func need(t testing.TB, env string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs buildkitd and a registry (run `make test`)")
	}
	v := os.Getenv(env)
	if v == "" {
		t.Fatalf("integration test needs buildkitd and a registry: run `make test`, or `eval \"$(hack/buildkit.sh up | tail -n1)\"` (%s is unset)", env)
	}
	return v
}

// Addr returns the BuildKit daemon's address.
func Addr(t testing.TB) string {
	t.Helper()
	addr := need(t, EnvAddr)
	sock := strings.TrimPrefix(addr, "unix://")
	if _, err := os.Stat(sock); strings.HasPrefix(addr, "unix://") && err != nil {
		t.Fatalf("buildkitd socket %s: %v (run hack/buildkit.sh up)", sock, err)
	}
	return addr
}

// Registry returns the shared loopback registry's host:port after checking
// that it answers.
func Registry(t testing.TB) string {
	t.Helper()
	host := need(t, EnvRegistry)
	if err := answers(host, time.Second); err != nil {
		t.Fatalf("test registry %s: %v (run hack/buildkit.sh up)", host, err)
	}
	return host
}

// Repository returns a repository name no other test or earlier run used, so
// that what a test finds in the long-lived registry is its own.
func Repository(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	n := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	return "test/" + n + "-" + hex.EncodeToString(b)
}

func answers(host string, wait time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(wait)
	for {
		resp, err := c.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			// 401: a registry that wants a login answers too.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RegistryConfig configures a registry started by StartRegistry.
type RegistryConfig struct {
	NotifyURL   string // where it sends notifications; empty: none
	NotifyToken string // sent with them as "Authorization: Bearer TOKEN"
	Htpasswd    string // a bcrypt htpasswd file: pulls and pushes need a login
}

// StartRegistry starts a distribution registry of the test's own on a free
// loopback port, in-memory, sending notifications per n, and stops it when
// the test ends. It returns host:port.
func StartRegistry(t testing.TB, n RegistryConfig) string {
	t.Helper()
	bin := need(t, EnvRegistryBin)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: info\nstorage:\n  inmemory: {}\nhttp:\n  addr: %s\n", host)
	if n.Htpasswd != "" {
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: arbor-test\n    path: %s\n", n.Htpasswd)
	}
	if n.NotifyURL != "" {
		cfg += fmt.Sprintf(`notifications:
  endpoints:
  - name: arbor-test
    url: %s
    headers:
      Authorization: [Bearer %s]
    timeout: 2s
    threshold: 3
    backoff: 200ms
`, n.NotifyURL, n.NotifyToken)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "serve", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("registry on %s said:\n%s", host, out.String())
		}
	})
	if err := answers(host, 20*time.Second); err != nil {
		t.Fatalf("registry on %s: %v\n%s", host, err, out.String())
	}
	return host
}

// busyboxApplets are the commands the base image links to busybox.
var busyboxApplets = []string{"sh", "echo", "cat", "ls", "wget", "false", "true", "mkdir", "touch", "sleep", "printf", "seq", "nc"}

// BaseImage pushes a small image with a shell, made from Debian's static
// busybox (package busybox-static), to repo and returns its reference. RUN
// steps need an image with a shell, and a test may reach no other registry.
func BaseImage(t testing.TB, repo string) string {
	t.Helper()
	bin, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox is needed for the base image of RUN steps (apt-get install busybox-static; hack/buildkit.sh up installs it): %v", err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(rootfs(t, data))), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	// BuildKit's exporter needs the platform of every base image.
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return Push(t, repo+":busybox", img)
}

// Push pushes img to ref over plain HTTP and returns ref.
func Push(t testing.TB, ref string, img v1.Image, opts ...remote.Option) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := remote.Write(r, img, append(opts, remote.WithContext(ctx))...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// rootfs is a tar of /bin/busybox and its applet links.
func rootfs(t testing.TB, busybox []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	mtime := time.Unix(0, 0)
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755, ModTime: mtime}))
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: mtime}))
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(busybox)), ModTime: mtime}))
	_, err := tw.Write(busybox)
	must(err)
	for _, a := range busyboxApplets {
		must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", ModTime: mtime}))
	}
	must(tw.Close())
	return buf.Bytes()
}

// RandomImage returns a small image whose content is unique, for tests that
// need an image to push and find.
func RandomImage(t testing.TB) v1.Image {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "random", Mode: 0o644, Size: int64(len(b))})
	tw.Write(b)
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
