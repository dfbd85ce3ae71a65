// Package repofs holds the rules every view of a repository follows, and the
// view of a repository on the local disk (arbor validate, render, init, diff,
// apply). The daemon's view, a commit's git tree (gitsource), follows the same
// rules with the same errors:
//
//   - no read leaves the repository root: a symbolic link whose target is
//     absolute or climbs above the root is an error naming the link;
//   - only regular files are read: a named pipe, a device or a socket is
//     refused before it is opened, so a FIFO cannot block a reader;
//   - no file is read past a size limit: the view's own ceiling
//     (DefaultMaxFileSize), and the tighter limit a reader asks for with
//     ReadFile (schema asks 1 MiB for configuration files).
//
// A branch is untrusted input; these rules are what keeps a hostile one from
// reading the host's files, exhausting memory or hanging a reader.
package repofs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// DefaultMaxFileSize is the largest file a view reads when not told
// otherwise: the most any reader of a repository needs (kustomize inputs), far
// less than would hurt the daemon or a CI runner.
const DefaultMaxFileSize = 8 << 20

// maxLinkTarget bounds the target of a symbolic link (Linux's PATH_MAX).
const maxLinkTarget = 4096

// Errors a view returns, wrapped in an *fs.PathError naming the file and in
// the typed errors below; test them with errors.Is.
var (
	ErrEscapes    = errors.New("symbolic link leaves the repository")
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("file too large")
)

// LinkError is a symbolic link whose target leaves the repository.
type LinkError struct {
	Link   string // the link's path in the repository
	Target string // what it points to
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("symbolic link %s points outside the repository (%q)", e.Link, e.Target)
}

// Is makes errors.Is(err, ErrEscapes) true.
func (e *LinkError) Is(target error) bool { return target == ErrEscapes }

// SizeError is a file larger than a reader's limit. Size is -1 when the file
// grew past the limit while it was read.
type SizeError struct {
	Size, Limit int64
}

func (e *SizeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("file too large: more than the limit of %s", FormatSize(e.Limit))
	}
	return fmt.Sprintf("file too large: %d bytes, the limit is %s", e.Size, FormatSize(e.Limit))
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *SizeError) Is(target error) bool { return target == ErrTooLarge }

// TypeError is something other than a regular file where one was to be read.
type TypeError struct {
	Mode fs.FileMode
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("not a regular file (%s)", kind(e.Mode))
}

// Is makes errors.Is(err, ErrNotRegular) true.
func (e *TypeError) Is(target error) bool { return target == ErrNotRegular }

func kind(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a device"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	default:
		return "mode " + m.String()
	}
}

// Refused reports whether err is one of the rules above rather than an I/O
// failure: the repository's content is at fault, and its owner can fix it.
func Refused(err error) bool {
	return errors.Is(err, ErrEscapes) || errors.Is(err, ErrNotRegular) || errors.Is(err, ErrTooLarge)
}

// FormatSize writes a byte count the way limits are documented: "1 MiB",
// "512 KiB", or bytes.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// Check says whether a file described by info may be read under limit: it
// must be a regular file of at most limit bytes. Both views call it before
// they open a file, so that neither reads a byte of a file it refuses.
func Check(info fs.FileInfo, limit int64) error {
	if !info.Mode().IsRegular() {
		return &TypeError{Mode: info.Mode()}
	}
	if info.Size() > limit {
		return &SizeError{Size: info.Size(), Limit: limit}
	}
	return nil
}

// ReadAll reads r to the end, but never more than limit+1 bytes: a file that
// grows past its checked size still cannot take more memory than the limit.
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &SizeError{Size: -1, Limit: limit}
	}
	return b, nil
}

// ReadFile reads the file name of fsys, refusing anything but a regular file
// of at most limit bytes before opening it. It is how every reader of a
// repository reads a file, whichever view fsys is. Errors are *fs.PathError.
func ReadFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	info, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if err := Check(info, limit); err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The view checks again on the open file: it may have changed since Stat.
	if info, err = f.Stat(); err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if err := Check(info, limit); err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	b, err := ReadAll(f, limit)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return b, nil
}

// ReadLinkTarget reads a symbolic link's target from r, bounded like a
// file name.
func ReadLinkTarget(r io.Reader) (string, error) {
	b, err := ReadAll(r, maxLinkTarget)
	return string(b), err
}

// JoinLink resolves the target of the symbolic link at dir/link lexically,
// the way both views do, and appends rest, the path components after the
// link. It returns the path's components from the repository root, or a
// *LinkError when the target is absolute or climbs above the root (even if it
// would come back in: os.Root refuses that too, and the views agree).
func JoinLink(dir []string, link, target string, rest []string) ([]string, error) {
	linkPath := path.Join(path.Join(dir...), link)
	if target == "" || path.IsAbs(target) {
		return nil, &LinkError{Link: linkPath, Target: target}
	}
	depth := len(dir)
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return nil, &LinkError{Link: linkPath, Target: target}
			}
		default:
			depth++
		}
	}
	p := path.Clean(path.Join(path.Join(dir...), target, path.Join(rest...)))
	if p == "." {
		return nil, nil
	}
	return strings.Split(p, "/"), nil
}
