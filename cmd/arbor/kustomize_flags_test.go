package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestKustomizeSizeFlags: --kustomize-max-file-size and
// --kustomize-max-total-size bound what validate and render let kustomize
// read, and the error names the file and the limit.
func TestKustomizeSizeFlags(t *testing.T) {
	repo, _ := hostileRepo(t)
	writeFile(t, filepath.Join(repo, ".release.yaml"), "kustomize: [{path: k}]\n")
	writeFile(t, filepath.Join(repo, "k/kustomization.yaml"), "configMapGenerator: [{name: g, files: [data.txt]}]\n")
	writeFile(t, filepath.Join(repo, "k/data.txt"), strings.Repeat("x", 3000)+"\n")
	if stdout, stderr, code := arborLimited(t, "validate", repo); code != exitOK {
		t.Fatalf("within the default limits: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code := arborLimited(t, "validate", "--kustomize-max-file-size", "2000", repo)
	if code != exitNo || !strings.Contains(stdout, "k/data.txt: 3001 bytes, over the limit of 2000 bytes for one file a kustomization reads") {
		t.Errorf("validate, file size: exit %d\n%s%s", code, stdout, stderr)
	}
	_, stderr, code = arborLimited(t, "render", "--branch", "main", "--kustomize-max-total-size", "3000", repo)
	if code != exitNo || !strings.Contains(stderr, "over the limit of 3000 bytes (kustomize.max_total_size)") {
		t.Errorf("render, total size: exit %d\n%s", code, stderr)
	}
}
