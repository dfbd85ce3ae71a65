package main

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/arbordev/arbor/internal/buildkittest"
)

// TestImage builds arbor's container image the way `make image` does
// (hack/image.sh, deploy/Dockerfile, the real buildkitd), pushes it to the
// test registry and checks what it holds: a static binary that answers
// `arbor version`, a non-root user, CA certificates, and no shell.
func TestImage(t *testing.T) {
	addr := buildkittest.Addr(t)
	ref := buildkittest.Registry(t) + "/" + buildkittest.Repository(t) + "/arbor:test"
	const version = "v0.0.0-imagetest"
	cmd := exec.Command(filepath.Join("..", "..", "hack", "image.sh"))
	cmd.Env = append(os.Environ(), "BUILDKIT_ADDR="+addr, "IMAGE="+ref, "VERSION="+version)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/image.sh: %v\n%s", err, out)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q; want 65532:65532 (non-root)", cf.Config.User)
	}
	if strings.Join(cf.Config.Entrypoint, " ") != "/usr/local/bin/arbor" {
		t.Errorf("entrypoint %q; want /usr/local/bin/arbor", cf.Config.Entrypoint)
	}

	files := map[string][]byte{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var data []byte
		if h.Name == "usr/local/bin/arbor" || h.Name == "etc/passwd" {
			if data, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
		files[h.Name] = data
	}
	for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"} {
		if _, ok := files[shell]; ok {
			t.Errorf("the image has %s; want no shell", shell)
		}
	}
	if _, ok := files["etc/ssl/certs/ca-certificates.crt"]; !ok {
		t.Error("the image has no CA certificates: HTTPS git remotes would fail")
	}
	if !strings.Contains(string(files["etc/passwd"]), ":65532:65532:") {
		t.Errorf("etc/passwd has no user 65532:\n%s", files["etc/passwd"])
	}
	bin := filepath.Join(t.TempDir(), "arbor")
	if err := os.WriteFile(bin, files["usr/local/bin/arbor"], 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("the image's arbor: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the image's arbor asks for a dynamic loader: want a static binary")
		}
	}
	f.Close()
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), version) {
		t.Errorf("arbor version: %v, %q; want %s", err, out, version)
	}
}
