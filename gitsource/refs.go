package gitsource

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// readLocalRefs reads the branches and HEAD of a repository on disk: the
// loose refs under refs/heads, which win over packed-refs, and HEAD. It reads
// git's files directly rather than through go-git's storage, which costs
// several times more system calls per ref; a listing runs on every change
// fsnotify reports.
func readLocalRefs(gitDir, common string) ([]*plumbing.Reference, error) {
	branches, err := readPackedRefs(filepath.Join(common, "packed-refs"))
	if err != nil {
		return nil, err
	}
	if err := readLooseRefs(filepath.Join(common, "refs", "heads"), branches); err != nil {
		return nil, err
	}
	refs := make([]*plumbing.Reference, 0, len(branches)+1)
	for name, h := range branches {
		refs = append(refs, plumbing.NewHashReference(plumbing.NewBranchReferenceName(name), h))
	}
	head, err := readHead(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return nil, err
	}
	return append(refs, head), nil
}

// readPackedRefs returns the branches in a packed-refs file (none when it
// does not exist).
func readPackedRefs(path string) (map[string]plumbing.Hash, error) {
	branches := make(map[string]plumbing.Hash)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return branches, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '^' {
			continue // header, or the peeled target of the tag above
		}
		sha, ref, ok := strings.Cut(line, " ")
		if !ok || !isHexHash(sha) {
			return nil, fmt.Errorf("%s: malformed line %q", path, line)
		}
		if name, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
			branches[name] = plumbing.NewHash(sha)
		}
	}
	return branches, sc.Err()
}

// readLooseRefs adds the loose branch refs below dir to branches. Files that
// vanish while being read (a branch deleted meanwhile) are skipped, as are
// lock files and symbolic refs.
func readLooseRefs(dir string, branches map[string]plumbing.Hash) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory: ref storage format not supported (reftable?)", dir)
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".lock") {
			return err
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		sha := strings.TrimSpace(string(data))
		if strings.HasPrefix(sha, "ref:") {
			return nil
		}
		if !isHexHash(sha) {
			return fmt.Errorf("%s: not a ref file", path)
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		branches[filepath.ToSlash(rel)] = plumbing.NewHash(sha)
		return nil
	})
}

// readHead reads HEAD: a symbolic ref to a branch, or a detached commit.
func readHead(path string) (*plumbing.Reference, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(data))
	if target, ok := strings.CutPrefix(s, "ref:"); ok {
		return plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.ReferenceName(strings.TrimSpace(target))), nil
	}
	if !isHexHash(s) {
		return nil, fmt.Errorf("%s: malformed HEAD", path)
	}
	return plumbing.NewHashReference(plumbing.HEAD, plumbing.NewHash(s)), nil
}

// isHexHash reports whether s is a 40-digit lower-case hex SHA-1.
func isHexHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
