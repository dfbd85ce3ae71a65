package gitsource

import (
	"context"
	"fmt"
	"path"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TreeHash returns the git tree hash of directory dir ("." for the root) at
// commit: a content key of everything under it, which the object store
// already holds, so nothing is read or hashed. The images package tags built
// images with it (images.Request.ContextKey): a commit that leaves a build
// context unchanged keeps its tree hash, and its image.
func (s *Source) TreeHash(ctx context.Context, commit, dir string) (string, error) {
	c, err := s.commit(ctx, commit)
	if err != nil {
		return "", err
	}
	dir = path.Clean(dir)
	if dir == "." || dir == "/" || dir == "" {
		return c.TreeHash.String(), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	root, err := object.GetTree(s.repo.Storer, c.TreeHash)
	if err != nil {
		return "", fmt.Errorf("%s: commit %s: %w", s.app, commit, err)
	}
	e, err := root.FindEntry(dir)
	if err != nil {
		return "", fmt.Errorf("%s: commit %s: %s: %w", s.app, commit, dir, err)
	}
	if e.Mode != filemode.Dir {
		return "", fmt.Errorf("%s: commit %s: %s is not a directory", s.app, commit, dir)
	}
	return e.Hash.String(), nil
}
