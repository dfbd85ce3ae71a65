//go:build unix

package repofs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
)

// hostile makes a repository next to a secret file outside it, with links
// out of it, a named pipe, and files either side of a size limit.
func hostile(t *testing.T) (repo, secret string) {
	t.Helper()
	base := t.TempDir()
	repo = filepath.Join(base, "repo")
	secret = filepath.Join(base, "secret.txt")
	must(t, os.WriteFile(secret, []byte("TOP-SECRET-CONTENT\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(repo, "dir", "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(repo, "dir", "sub", "file.txt"), []byte("hello\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(repo, "exact"), make([]byte, 100), 0o644))
	must(t, os.WriteFile(filepath.Join(repo, "over"), make([]byte, 101), 0o644))
	for name, target := range map[string]string{
		"inside":      "dir/sub/file.txt",
		"dirlink":     "dir",
		"dir/up":      "../inside",
		"out":         "../secret.txt",
		"abs":         secret,
		"zero":        "/dev/zero",
		"dir/sub/out": "../../../secret.txt",
		"outdir":      "..",
		"loop":        "loop",
	} {
		must(t, os.Symlink(target, filepath.Join(repo, name)))
	}
	must(t, syscall.Mkfifo(filepath.Join(repo, "fifo"), 0o644))
	return repo, secret
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestDirReadsInside(t *testing.T) {
	repo, _ := hostile(t)
	d, err := OpenDir(repo, 100)
	must(t, err)
	defer d.Close()
	for name, want := range map[string]string{
		"dir/sub/file.txt":     "hello\n",
		"inside":               "hello\n",
		"dirlink/sub/file.txt": "hello\n",
		"dir/up":               "hello\n",
		"exact":                string(make([]byte, 100)),
	} {
		b, err := fs.ReadFile(d, name)
		if err != nil || string(b) != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", name, b, err, want)
		}
	}
	if _, err := fs.ReadFile(d, "dirlink/../exact"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadFile(dirlink/../exact) = %v, want ErrInvalid", err)
	}
}

func TestDirRefusesHostileFiles(t *testing.T) {
	repo, _ := hostile(t)
	d, err := OpenDir(repo, 100)
	must(t, err)
	defer d.Close()
	cases := []struct {
		name string
		want error
		text string
	}{
		{"out", ErrEscapes, `symbolic link out points outside the repository ("../secret.txt")`},
		{"abs", ErrEscapes, "symbolic link abs points outside the repository"},
		{"zero", ErrEscapes, `symbolic link zero points outside the repository ("/dev/zero")`},
		{"dir/sub/out", ErrEscapes, "symbolic link dir/sub/out points outside"},
		{"outdir/secret.txt", ErrEscapes, `symbolic link outdir points outside the repository ("..")`},
		{"fifo", ErrNotRegular, "fifo: not a regular file (a named pipe)"},
		{"over", ErrTooLarge, "over: file too large: 101 bytes, the limit is 100 bytes"},
		{"dir", ErrNotRegular, "not a regular file (a directory)"},
	}
	for _, c := range cases {
		b, err := d.ReadFile(c.name)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("ReadFile(%s) = %q, %v; want %v containing %q", c.name, b, err, c.want, c.text)
		}
		b, err = ReadFile(d, c.name, 100)
		if !errors.Is(err, c.want) {
			t.Errorf("repofs.ReadFile(%s) = %q, %v; want %v", c.name, b, err, c.want)
		}
		if c.want == ErrEscapes {
			if _, err := d.Stat(c.name); !errors.Is(err, ErrEscapes) {
				t.Errorf("Stat(%s) = %v, want %v", c.name, err, ErrEscapes)
			}
		}
	}
	if _, err := d.ReadFile("loop"); err == nil {
		t.Error("ReadFile(loop) succeeded")
	}
	if _, err := d.ReadFile("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want ErrNotExist", err)
	}
}

func TestReadFileLimit(t *testing.T) {
	repo, _ := hostile(t)
	d, err := OpenDir(repo, 0)
	must(t, err)
	defer d.Close()
	if _, err := ReadFile(d, "exact", 100); err != nil {
		t.Errorf("100 bytes under a 100-byte limit: %v", err)
	}
	_, err = ReadFile(d, "exact", 99)
	var size *SizeError
	if !errors.As(err, &size) || size.Size != 100 || size.Limit != 99 {
		t.Errorf("100 bytes under a 99-byte limit: %v", err)
	}
	// A file that grows after its check is still cut at the limit.
	f, err := d.Open("exact")
	must(t, err)
	defer f.Close()
	must(t, os.WriteFile(filepath.Join(repo, "exact"), make([]byte, DefaultMaxFileSize+10), 0o644))
	if b, err := ReadAll(f, DefaultMaxFileSize+100); err == nil {
		t.Errorf("read %d bytes past the view's limit", len(b))
	}
}

func TestDirIsAnFS(t *testing.T) {
	repo := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(repo, "a", "b"), 0o755))
	must(t, os.WriteFile(filepath.Join(repo, "a", "b", "c.txt"), []byte("c"), 0o644))
	must(t, os.WriteFile(filepath.Join(repo, ".release.yaml"), []byte("x: 1\n"), 0o644))
	d, err := OpenDir(repo, 0)
	must(t, err)
	defer d.Close()
	if err := fstest.TestFS(d, ".release.yaml", "a/b/c.txt"); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDirNeedsADirectory(t *testing.T) {
	repo, _ := hostile(t)
	for _, p := range []string{filepath.Join(repo, "exact"), filepath.Join(repo, "nope")} {
		if _, err := OpenDir(p, 0); err == nil {
			t.Errorf("OpenDir(%s) succeeded", p)
		}
	}
}
