package gitsource

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/arbordev/arbor/internal/repofs"
)

// maxLinkHops bounds symlink resolution, like the kernel's ELOOP limit.
const maxLinkHops = 40

var (
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
	_ fs.ReadLinkFS = (*treeFS)(nil)
)

// treeFS is a commit's tree read straight from the object store. Every
// operation takes the source's lock, because go-git's storage is not safe for
// concurrent use; the lock is never held between operations, so many treeFS
// values of one repository can be read from many goroutines.
//
// It follows the rules of package repofs, with the same errors as the local
// view of a repository: symbolic links are followed within the tree, and a
// link that leaves it is a *repofs.LinkError naming the link (a loop is an
// error too); a file larger than maxFile (repofs.DefaultMaxFileSize when
// zero) is a *repofs.SizeError, found from the object's header before its
// content is inflated. Files are read whole into memory when opened.
// Submodules appear as empty directories. Every ModTime is the commit's
// committer time.
type treeFS struct {
	mu      *sync.Mutex
	store   storer.EncodedObjectStorer
	root    plumbing.Hash
	mtime   time.Time
	sync    func() // called with mu held before each read; see Source.syncPacks
	maxFile int64
}

// limit is the largest file the tree reads.
func (t *treeFS) limit() int64 {
	if t.maxFile > 0 {
		return t.maxFile
	}
	return repofs.DefaultMaxFileSize
}

// lock takes the store's lock and brings its view of the packs up to date.
func (t *treeFS) lock() {
	t.mu.Lock()
	if t.sync != nil {
		t.sync()
	}
}

// node is a resolved path: its base name and its tree entry.
type node struct {
	name string
	mode filemode.FileMode
	hash plumbing.Hash
}

func (n node) isDir() bool { return n.mode == filemode.Dir || n.mode == filemode.Submodule }

// Open opens the file or directory at name, following symbolic links.
func (t *treeFS) Open(name string) (fs.File, error) {
	t.lock()
	defer t.mu.Unlock()
	n, err := t.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		entries, err := t.dirEntries(n)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &dirFile{info: t.info(n, 0), entries: entries}, nil
	}
	data, err := t.file(n)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &blobFile{info: t.info(n, int64(len(data))), Reader: bytes.NewReader(data)}, nil
}

// ReadFile returns the content of the file at name.
func (t *treeFS) ReadFile(name string) ([]byte, error) {
	t.lock()
	defer t.mu.Unlock()
	n, err := t.resolve("readfile", name, true)
	if err != nil {
		return nil, err
	}
	data, err := t.file(n)
	if err != nil {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: err}
	}
	return data, nil
}

// ReadDir lists the directory at name, sorted by name.
func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	t.lock()
	defer t.mu.Unlock()
	n, err := t.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	entries, err := t.dirEntries(n)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return entries, nil
}

// Stat describes the file at name, following symbolic links.
func (t *treeFS) Stat(name string) (fs.FileInfo, error) {
	return t.stat("stat", name, true)
}

// Lstat describes the file at name without following a final symbolic link.
func (t *treeFS) Lstat(name string) (fs.FileInfo, error) {
	return t.stat("lstat", name, false)
}

// ReadLink returns the target of the symbolic link at name.
func (t *treeFS) ReadLink(name string) (string, error) {
	t.lock()
	defer t.mu.Unlock()
	n, err := t.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.mode != filemode.Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	target, err := t.linkTarget(n.hash)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return target, nil
}

func (t *treeFS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	t.lock()
	defer t.mu.Unlock()
	n, err := t.resolve(op, name, follow)
	if err != nil {
		return nil, err
	}
	size, err := t.size(n)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return t.info(n, size), nil
}

// resolve walks name from the root one component at a time, following
// symbolic links in directories, and in the last component when follow is
// set. Callers hold t.mu.
func (t *treeFS) resolve(op, name string, follow bool) (node, error) {
	if !fs.ValidPath(name) {
		return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	notExist := &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	cur := node{name: ".", mode: filemode.Dir, hash: t.root}
	rest := splitPath(name)
	var dir []string // path of cur from the root
	for hops := 0; len(rest) > 0; {
		tree, err := object.GetTree(t.store, cur.hash)
		if err != nil {
			return node{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		e, err := tree.FindEntry(rest[0])
		if err != nil {
			return node{}, notExist
		}
		next := node{name: e.Name, mode: e.Mode, hash: e.Hash}
		if next.mode == filemode.Symlink && (len(rest) > 1 || follow) {
			if hops++; hops > maxLinkHops {
				return node{}, &fs.PathError{Op: op, Path: name, Err: errors.New("too many levels of symbolic links")}
			}
			target, err := t.linkTarget(next.hash)
			if err != nil {
				return node{}, &fs.PathError{Op: op, Path: name, Err: err}
			}
			joined, err := repofs.JoinLink(dir, next.name, target, rest[1:])
			if err != nil {
				return node{}, &fs.PathError{Op: op, Path: name, Err: err}
			}
			cur, dir, rest = node{name: ".", mode: filemode.Dir, hash: t.root}, nil, joined
			continue
		}
		rest = rest[1:]
		if len(rest) > 0 {
			if next.mode != filemode.Dir {
				return node{}, notExist
			}
			dir = append(dir, next.name)
		}
		cur = next
	}
	if name != "." {
		cur.name = path.Base(name)
	}
	return cur, nil
}

func splitPath(p string) []string {
	if p == "." || p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// dirEntries lists a directory node sorted by name (git sorts directories as
// if their names ended in "/", which fs.ReadDir does not).
func (t *treeFS) dirEntries(n node) ([]fs.DirEntry, error) {
	if n.mode == filemode.Submodule {
		return nil, nil
	}
	tree, err := object.GetTree(t.store, n.hash)
	if err != nil {
		return nil, err
	}
	entries := make([]fs.DirEntry, 0, len(tree.Entries))
	for _, e := range tree.Entries {
		entries = append(entries, &dirEntry{fsys: t, n: node{name: e.Name, mode: e.Mode, hash: e.Hash}})
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

// file reads a file node's content, refusing a directory, and a blob larger
// than the tree's limit before it is inflated. Callers hold t.mu.
func (t *treeFS) file(n node) ([]byte, error) {
	size, err := t.size(n)
	if err != nil {
		return nil, err
	}
	if err := repofs.Check(t.info(n, size), t.limit()); err != nil {
		return nil, err
	}
	r, err := t.blob(n.hash)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return repofs.ReadAll(r, t.limit())
}

// linkTarget reads the target of a symbolic link, bounded like a path.
// Callers hold t.mu.
func (t *treeFS) linkTarget(h plumbing.Hash) (string, error) {
	r, err := t.blob(h)
	if err != nil {
		return "", err
	}
	defer r.Close()
	return repofs.ReadLinkTarget(r)
}

// blob opens a blob's content. Callers hold t.mu and close the reader.
func (t *treeFS) blob(h plumbing.Hash) (io.ReadCloser, error) {
	b, err := object.GetBlob(t.store, h)
	if err != nil {
		return nil, err
	}
	return b.Reader()
}

// objectSizer is implemented by go-git's filesystem storage, which can tell
// an object's size from its header without inflating it.
type objectSizer interface {
	EncodedObjectSize(plumbing.Hash) (int64, error)
}

// size returns a node's size: 0 for directories, else its blob's size.
// Callers hold t.mu.
func (t *treeFS) size(n node) (int64, error) {
	if n.isDir() {
		return 0, nil
	}
	if s, ok := t.store.(objectSizer); ok {
		if size, err := s.EncodedObjectSize(n.hash); err == nil {
			return size, nil
		}
	}
	o, err := t.store.EncodedObject(plumbing.BlobObject, n.hash)
	if err != nil {
		return 0, err
	}
	return o.Size(), nil
}

func (t *treeFS) info(n node, size int64) *fileInfo {
	return &fileInfo{name: n.name, size: size, mode: fsMode(n.mode), mtime: t.mtime}
}

// fsMode maps a git file mode to an fs.FileMode; the tree is read-only.
func fsMode(m filemode.FileMode) fs.FileMode {
	switch m {
	case filemode.Dir, filemode.Submodule:
		return fs.ModeDir | 0o555
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Executable:
		return 0o555
	default:
		return 0o444
	}
}

type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return i.size }
func (i *fileInfo) Mode() fs.FileMode  { return i.mode }
func (i *fileInfo) ModTime() time.Time { return i.mtime }
func (i *fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i *fileInfo) Sys() any           { return nil }

type dirEntry struct {
	fsys *treeFS
	n    node
}

func (d *dirEntry) Name() string      { return d.n.name }
func (d *dirEntry) IsDir() bool       { return d.n.isDir() }
func (d *dirEntry) Type() fs.FileMode { return fsMode(d.n.mode).Type() }

// Info describes the entry itself (a symbolic link is not followed).
func (d *dirEntry) Info() (fs.FileInfo, error) {
	d.fsys.lock()
	defer d.fsys.mu.Unlock()
	size, err := d.fsys.size(d.n)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: d.n.name, Err: err}
	}
	return d.fsys.info(d.n, size), nil
}

// blobFile is an open regular file, held in memory.
type blobFile struct {
	*bytes.Reader
	info *fileInfo
}

func (f *blobFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *blobFile) Close() error               { return nil }

// dirFile is an open directory.
type dirFile struct {
	info    *fileInfo
	entries []fs.DirEntry
	off     int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	left := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return slices.Clone(left), nil
	}
	if len(left) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(left))
	d.off += n
	return slices.Clone(left[:n]), nil
}
