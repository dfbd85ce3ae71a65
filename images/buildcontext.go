package images

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Defaults for the bounds of one build context.
const (
	DefaultMaxContextSize  = 256 << 20
	DefaultMaxContextFiles = 100_000
)

// contextMTime is the modification time of every file arbor sends as build
// context, so that the layers a COPY makes depend on content alone.
var contextMTime = time.Unix(0, 0)

// contextLimits bound what one build context may hold.
type contextLimits struct {
	maxSize  int64
	maxFiles int
}

// walkContext visits every entry under dir in fsys, depth first in lexical
// order, after checking the bounds and that no symbolic link leads out of dir.
// visit gets the path relative to dir ("" for dir itself).
func walkContext(fsys fs.FS, dir string, lim contextLimits, visit func(rel string, d fs.DirEntry, target string) error) error {
	var size int64
	files := 0
	return fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("build context %s: %w", dir, err)
		}
		rel := ""
		if p != dir {
			rel = strings.TrimPrefix(p, dir+"/")
			if dir == "." {
				rel = p
			}
		}
		if files++; files > lim.maxFiles {
			return fmt.Errorf("build context %s: more than %d files", dir, lim.maxFiles)
		}
		var target string
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := linkInside(fsys, p, rel)
			if err != nil {
				return fmt.Errorf("build context %s: %w", dir, err)
			}
			target = t
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("build context %s: %w", dir, err)
			}
			if size += info.Size(); size > lim.maxSize {
				return fmt.Errorf("build context %s: more than %s (images: max_context_size)", dir, byteSize(lim.maxSize))
			}
		case d.IsDir():
		default:
			return fmt.Errorf("build context %s: %s: not a regular file, directory or symbolic link", dir, p)
		}
		return visit(rel, d, target)
	})
}

// linkInside returns the target of the symbolic link at p (rel inside the
// context) when it points inside the context, and an error naming the link
// when it leaves it: an absolute target, or one that climbs above the
// context's root.
func linkInside(fsys fs.FS, p, rel string) (string, error) {
	target, err := fs.ReadLink(fsys, p)
	if err != nil {
		return "", err
	}
	if path.IsAbs(target) || filepath.IsAbs(target) {
		return "", fmt.Errorf("%s: symbolic link to %s leaves the build context", rel, target)
	}
	joined := path.Join(path.Dir(rel), target)
	if joined == ".." || strings.HasPrefix(joined, "../") {
		return "", fmt.Errorf("%s: symbolic link to %s leaves the build context", rel, target)
	}
	return target, nil
}

// writeContext copies the context under dir in fsys to the local directory
// out (which exists and is empty), within the bounds.
func writeContext(fsys fs.FS, dir, out string, lim contextLimits) error {
	return walkContext(fsys, dir, lim, func(rel string, d fs.DirEntry, target string) error {
		dst := filepath.Join(out, filepath.FromSlash(rel))
		switch {
		case target != "":
			return os.Symlink(target, dst)
		case d.IsDir():
			if rel != "" {
				if err := os.Mkdir(dst, 0o755); err != nil {
					return err
				}
			}
			return os.Chtimes(dst, contextMTime, contextMTime)
		default:
			return copyFile(fsys, path.Join(dir, rel), dst, d)
		}
	})
}

func copyFile(fsys fs.FS, src, dst string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if info.Mode()&0o111 != 0 {
		mode = 0o755
	}
	in, err := fsys.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	// The size was checked from the entry's Info; the copy is bounded by it
	// too, in case the file system reports less than it serves.
	if _, err := io.Copy(out, io.LimitReader(in, info.Size())); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(dst, contextMTime, contextMTime)
}

// ContextHash returns a content hash of the build context under dir in fsys:
// every path, its kind, its executable bit, a file's content and a link's
// target. It is the context half of a Key for callers that have no git tree
// hash of the context directory at hand (a local directory, tests); the same
// bounds as a build apply.
func ContextHash(fsys fs.FS, dir string) (string, error) {
	h := sha256.New()
	lim := contextLimits{maxSize: DefaultMaxContextSize, maxFiles: DefaultMaxContextFiles}
	err := walkContext(fsys, dir, lim, func(rel string, d fs.DirEntry, target string) error {
		switch {
		case target != "":
			fmt.Fprintf(h, "link %q %q\n", rel, target)
		case d.IsDir():
			fmt.Fprintf(h, "dir %q\n", rel)
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			sum, err := fileHash(fsys, path.Join(dir, rel), info.Size())
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "file %q %t %x\n", rel, info.Mode()&0o111 != 0, sum)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fileHash is the sha256 of a file's first size bytes, read as a stream.
func fileHash(fsys fs.FS, p string, size int64) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, size)); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return h.Sum(nil), nil
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
