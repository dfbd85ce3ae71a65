package repofs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

// maxLinkHops bounds symbolic link resolution, like the kernel's ELOOP limit.
const maxLinkHops = 40

var (
	_ fs.ReadDirFS  = (*Dir)(nil)
	_ fs.ReadFileFS = (*Dir)(nil)
	_ fs.StatFS     = (*Dir)(nil)
	_ fs.ReadLinkFS = (*Dir)(nil)
)

// Dir is a repository on the local disk, read through an os.Root: no path
// and no symbolic link can reach outside the directory it was opened on. It
// is safe for concurrent use.
type Dir struct {
	root *os.Root
	max  int64
}

// OpenDir opens the repository at dir. maxFile is the largest file any read
// returns (DefaultMaxFileSize when zero or less).
func OpenDir(dir string, maxFile int64) (*Dir, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if maxFile <= 0 {
		maxFile = DefaultMaxFileSize
	}
	return &Dir{root: root, max: maxFile}, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Root is the os.Root the view reads through, for a caller that writes into
// the repository (arbor init).
func (d *Dir) Root() *os.Root { return d.root }

// Open opens a directory, or a regular file of at most the view's limit. A
// file is stat'ed before it is opened and opened without blocking, so a named
// pipe is refused at once, and checked again once open.
func (d *Dir) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	info, err := d.root.Stat(name)
	if err != nil {
		return nil, d.explain("open", name, err)
	}
	if info.IsDir() {
		f, err := d.root.Open(name)
		if err != nil {
			return nil, d.explain("open", name, err)
		}
		return f, nil
	}
	if err := Check(info, d.max); err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	f, err := d.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, d.explain("open", name, err)
	}
	if info, err = f.Stat(); err == nil {
		err = Check(info, d.max)
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{f: f, max: d.max}, nil
}

// ReadFile reads a regular file of at most the view's limit.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	return ReadFile(dirNoReadFile{d}, name, d.max)
}

// dirNoReadFile hides Dir's ReadFile from the ReadFile function, which would
// otherwise not need to open the file itself.
type dirNoReadFile struct{ d *Dir }

func (n dirNoReadFile) Open(name string) (fs.File, error)     { return n.d.Open(name) }
func (n dirNoReadFile) Stat(name string) (fs.FileInfo, error) { return n.d.Stat(name) }

// ReadDir lists a directory, sorted by name. Entries describe the entries
// themselves: a symbolic link is listed as one.
func (d *Dir) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	f, err := d.root.Open(name)
	if err != nil {
		return nil, d.explain("readdir", name, err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

// Stat describes the file at name, following symbolic links inside the repository.
func (d *Dir) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	info, err := d.root.Stat(name)
	if err != nil {
		return nil, d.explain("stat", name, err)
	}
	return info, nil
}

// Lstat describes the file at name without following a final symbolic link.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrInvalid}
	}
	info, err := d.root.Lstat(name)
	if err != nil {
		return nil, d.explain("lstat", name, err)
	}
	return info, nil
}

// ReadLink returns the target of the symbolic link at name.
func (d *Dir) ReadLink(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	target, err := d.root.Readlink(name)
	if err != nil {
		return "", d.explain("readlink", name, err)
	}
	return target, nil
}

// explain turns os.Root's refusal of a path into the error the git tree view
// gives for the same path: the symbolic link that leaves the repository.
// Other errors, a missing file among them, are returned as they are.
func (d *Dir) explain(op, name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var link *LinkError
	if lerr := d.findEscape(name); errors.As(lerr, &link) {
		return &fs.PathError{Op: op, Path: name, Err: link}
	}
	return err
}

// findEscape walks name from the root one component at a time, resolving
// symbolic links lexically with JoinLink, and returns the *LinkError of the
// first link that leaves the repository, or nil.
func (d *Dir) findEscape(name string) error {
	var dir []string
	rest := strings.Split(name, "/")
	for hops := 0; len(rest) > 0 && hops <= maxLinkHops; {
		p := path.Join(path.Join(dir...), rest[0])
		info, err := d.root.Lstat(p)
		if err != nil {
			return nil
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			dir, rest = append(dir, rest[0]), rest[1:]
			continue
		}
		hops++
		target, err := d.root.Readlink(p)
		if err != nil {
			return nil
		}
		joined, err := JoinLink(dir, rest[0], target, rest[1:])
		if err != nil {
			return err
		}
		dir, rest = nil, joined
	}
	return nil
}

// file is an open regular file that cannot be read past the view's limit,
// even if it grows after it was checked. It wraps *os.File rather than
// embedding it, so that no promoted method (WriteTo, ReadAt) reads around
// the limit.
type file struct {
	f         *os.File
	max, read int64
}

func (f *file) Stat() (fs.FileInfo, error) { return f.f.Stat() }
func (f *file) Close() error               { return f.f.Close() }

func (f *file) Read(p []byte) (int, error) {
	if left := f.max - f.read + 1; int64(len(p)) > left {
		p = p[:left]
	}
	n, err := f.f.Read(p)
	if f.read += int64(n); f.read > f.max {
		return 0, &SizeError{Size: -1, Limit: f.max}
	}
	return n, err
}
