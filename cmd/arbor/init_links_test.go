package main

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitRefusesLinks: arbor init writes no file through a symbolic link,
// whichever of its paths is one and wherever it points; it writes nothing
// at all, and leaves what is outside the repository as it was.
func TestInitRefusesLinks(t *testing.T) {
	const compose = "services:\n  web:\n    image: nginx\n"
	cases := []struct {
		name  string
		force bool
		setup func(t *testing.T, repo, outside string)
		want  string
	}{
		{".release.yaml to a file outside, --force", true, func(t *testing.T, repo, outside string) {
			symlink(t, filepath.Join(outside, "victim.txt"), filepath.Join(repo, ".release.yaml"))
		}, ".release.yaml is a symbolic link"},
		{".release.yaml to a file outside", false, func(t *testing.T, repo, outside string) {
			symlink(t, filepath.Join(outside, "victim.txt"), filepath.Join(repo, ".release.yaml"))
		}, ".release.yaml is a symbolic link"},
		{".release.yaml to a new file outside", false, func(t *testing.T, repo, outside string) {
			symlink(t, filepath.Join(outside, "created.yaml"), filepath.Join(repo, ".release.yaml"))
		}, ".release.yaml is a symbolic link"},
		{".release/ to a directory outside", false, func(t *testing.T, repo, outside string) {
			symlink(t, outside, filepath.Join(repo, ".release"))
		}, ".release is a symbolic link"},
		{".release/ to a directory outside, --force", true, func(t *testing.T, repo, outside string) {
			symlink(t, outside, filepath.Join(repo, ".release"))
		}, ".release is a symbolic link"},
		{".release/ to a directory inside", false, func(t *testing.T, repo, _ string) {
			if err := os.Mkdir(filepath.Join(repo, "elsewhere"), 0o755); err != nil {
				t.Fatal(err)
			}
			symlink(t, "elsewhere", filepath.Join(repo, ".release"))
		}, ".release is a symbolic link"},
		{"template file to a file outside, --force", true, func(t *testing.T, repo, outside string) {
			if err := os.Mkdir(filepath.Join(repo, ".release"), 0o755); err != nil {
				t.Fatal(err)
			}
			symlink(t, filepath.Join(outside, "victim.txt"), filepath.Join(repo, ".release", "application_template.yaml"))
		}, ".release/application_template.yaml is a symbolic link"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			repo, outside := filepath.Join(base, "repo"), filepath.Join(base, "outside")
			for _, d := range []string{repo, outside} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			writeFile(t, filepath.Join(outside, "victim.txt"), "keep me\n")
			writeFile(t, filepath.Join(repo, "docker-compose.yml"), compose)
			c.setup(t, repo, outside)
			before := listTree(t, repo)

			var out, errs bytes.Buffer
			err := runInit(&out, &errs, repo, initOptions{force: c.force})
			if exitCode(err) != exitUsage || !strings.Contains(err.Error(), c.want) {
				t.Errorf("init = %v (exit %d), want exit %d and %q\n%s", err, exitCode(err), exitUsage, c.want, out.String())
			}
			if got := listTree(t, outside); len(got) != 1 || got["victim.txt"] != "keep me\n" {
				t.Errorf("outside the repository, init left %v", got)
			}
			if after := listTree(t, repo); !maps.Equal(before, after) {
				t.Errorf("init wrote in the repository although it refused:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// listTree maps every file under dir (links not followed) to its content,
// or to "-> target" for a link.
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == dir || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if info.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			out[rel] = "-> " + target
			return err
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
