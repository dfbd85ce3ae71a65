package images

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestContextRefusesLinksOut(t *testing.T) {
	lim := contextLimits{maxSize: 1 << 20, maxFiles: 100}
	cases := map[string]string{
		"../secret":          "svc/up",
		"/etc/passwd":        "svc/abs",
		"../../outside/file": "svc/sub/deep",
	}
	for target, link := range cases {
		fsys := fstest.MapFS{
			"svc/Dockerfile": {Data: []byte("FROM scratch\n")},
			link:             {Data: []byte(target), Mode: fs.ModeSymlink},
		}
		err := writeContext(fsys, "svc", t.TempDir(), lim)
		if err == nil || !strings.Contains(err.Error(), "leaves the build context") {
			t.Errorf("link %s -> %s: error %v, want it refused", link, target, err)
		}
		if _, err := ContextHash(fsys, "svc"); err == nil {
			t.Errorf("ContextHash followed the link %s -> %s", link, target)
		}
	}
}

func TestContextKeepsLinksInside(t *testing.T) {
	fsys := fstest.MapFS{
		"svc/bin/tool":   {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		"svc/tool":       {Data: []byte("bin/tool"), Mode: fs.ModeSymlink},
		"svc/bin/parent": {Data: []byte("../tool"), Mode: fs.ModeSymlink},
		"other/file":     {Data: []byte("not sent")},
	}
	out := t.TempDir()
	if err := writeContext(fsys, "svc", out, contextLimits{maxSize: 1 << 20, maxFiles: 100}); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(out, "tool")); err != nil || target != "bin/tool" {
		t.Fatalf("link tool: %q %v", target, err)
	}
	info, err := os.Stat(filepath.Join(out, "bin/tool"))
	if err != nil || info.Mode()&0o100 == 0 {
		t.Fatalf("bin/tool: %v, mode %v: want executable", err, info)
	}
	if _, err := os.Stat(filepath.Join(out, "file")); err == nil {
		t.Fatal("a file outside the context was sent")
	}
}

func TestContextBounds(t *testing.T) {
	fsys := fstest.MapFS{
		"svc/a": {Data: make([]byte, 600)},
		"svc/b": {Data: make([]byte, 600)},
	}
	err := writeContext(fsys, "svc", t.TempDir(), contextLimits{maxSize: 1000, maxFiles: 100})
	if err == nil || !strings.Contains(err.Error(), "more than 1000 bytes") {
		t.Fatalf("size cap: %v", err)
	}
	err = writeContext(fsys, "svc", t.TempDir(), contextLimits{maxSize: 1 << 20, maxFiles: 2})
	if err == nil || !strings.Contains(err.Error(), "more than 2 files") {
		t.Fatalf("file cap: %v", err)
	}
	if err := writeContext(fsys, "svc", t.TempDir(), contextLimits{maxSize: 1200, maxFiles: 3}); err != nil {
		t.Fatalf("within the bounds: %v", err)
	}
}

func TestContextHashFollowsContent(t *testing.T) {
	fsys := fstest.MapFS{"svc/a": {Data: []byte("1")}, "README": {Data: []byte("x")}}
	h1, err := ContextHash(fsys, "svc")
	if err != nil {
		t.Fatal(err)
	}
	fsys["README"] = &fstest.MapFile{Data: []byte("y")}
	h2, _ := ContextHash(fsys, "svc")
	fsys["svc/a"] = &fstest.MapFile{Data: []byte("2")}
	h3, _ := ContextHash(fsys, "svc")
	fsys["svc/a"] = &fstest.MapFile{Data: []byte("2"), Mode: 0o755}
	h4, _ := ContextHash(fsys, "svc")
	if h1 != h2 || h2 == h3 || h3 == h4 {
		t.Fatalf("hashes %s %s %s %s: want equal, then different for content and mode", h1, h2, h3, h4)
	}
}

func TestKeyInputs(t *testing.T) {
	base := Key("tree", []byte("FROM scratch"), map[string]string{"A": "1"}, "")
	for name, k := range map[string]string{
		"context":    Key("tree2", []byte("FROM scratch"), map[string]string{"A": "1"}, ""),
		"dockerfile": Key("tree", []byte("FROM scratch\n"), map[string]string{"A": "1"}, ""),
		"arg value":  Key("tree", []byte("FROM scratch"), map[string]string{"A": "2"}, ""),
		"arg split":  Key("tree", []byte("FROM scratch"), map[string]string{"A": "1", "": ""}, ""),
		"target":     Key("tree", []byte("FROM scratch"), map[string]string{"A": "1"}, "x"),
	} {
		if k == base {
			t.Errorf("changing the %s kept the key", name)
		}
	}
	if Key("tree", []byte("FROM scratch"), map[string]string{"A": "1"}, "") != base {
		t.Error("the key is not stable")
	}
}

func TestBuildRefusesAMissingOrFileContext(t *testing.T) {
	b, err := NewBuilder(BuilderOptions{Addr: "unix:///nonexistent.sock", Registry: "127.0.0.1:1/x"})
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"svc/Dockerfile": {Data: []byte("FROM scratch\n")}}
	for dir, want := range map[string]string{"nope": "build context nope:", "svc/Dockerfile": "build context svc/Dockerfile: not a directory", "../up": "leaves the repository"} {
		_, err := b.Build(t.Context(), Request{Repository: "web", Source: fsys, Context: dir, ContextKey: "k"})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("context %q: error %v, want %q", dir, err, want)
		}
	}
}
