package gitsource

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// defaultMaxPacks is how many pack files a cache may hold before a fetch
// merges them. Every go-git fetch adds a pack, and every object lookup
// searches the index of every pack, so an unmerged cache slows down (and
// grows in memory) with each push.
const defaultMaxPacks = 16

// compactPacks merges every pack of the cache except the largest into one
// new pack, when there are more than max. It moves objects without walking
// history, so it works on shallow caches and drops nothing; objects of
// branches no longer listed stay (they may still be needed, e.g. to tear an
// environment down). Callers hold s.mu.
func (s *Source) compactPacks(max int) error {
	store, ok := s.repo.Storer.(*filesystem.Storage)
	if !ok || s.cacheDir == "" {
		return nil
	}
	packs, err := store.ObjectPacks()
	if err != nil || len(packs) <= max {
		return err
	}
	packDir := filepath.Join(s.cacheDir, "objects", "pack")
	largest, err := largestPack(packDir, packs)
	if err != nil {
		return err
	}
	var merge, objects []plumbing.Hash
	for _, p := range packs {
		if p == largest {
			continue
		}
		hashes, err := packObjects(packDir, p)
		if err != nil {
			return err
		}
		merge, objects = append(merge, p), append(objects, hashes...)
	}
	if err := writePack(store, objects); err != nil {
		return err
	}
	for _, p := range merge {
		if err := store.DeleteOldObjectPackAndIndex(p, time.Time{}); err != nil {
			store.Reindex()
			return fmt.Errorf("remove merged pack %s: %w", p, err)
		}
	}
	store.Reindex()
	return nil
}

// writePack writes objects (deduplicated) into one new pack.
func writePack(store *filesystem.Storage, objects []plumbing.Hash) (err error) {
	seen := make(map[plumbing.Hash]bool, len(objects))
	unique := objects[:0]
	for _, h := range objects {
		if !seen[h] {
			seen[h] = true
			unique = append(unique, h)
		}
	}
	w, err := store.PackfileWriter()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := packfile.NewEncoder(w, store, false).Encode(unique, 10); err != nil {
		return fmt.Errorf("write merged pack: %w", err)
	}
	return nil
}

func largestPack(dir string, packs []plumbing.Hash) (plumbing.Hash, error) {
	var best plumbing.Hash
	var bestSize int64 = -1
	for _, p := range packs {
		fi, err := os.Stat(filepath.Join(dir, "pack-"+p.String()+".pack"))
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if fi.Size() > bestSize {
			best, bestSize = p, fi.Size()
		}
	}
	return best, nil
}

// packObjects lists the objects of one pack from its index.
func packObjects(dir string, pack plumbing.Hash) ([]plumbing.Hash, error) {
	f, err := os.Open(filepath.Join(dir, "pack-"+pack.String()+".idx"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(f).Decode(idx); err != nil {
		return nil, fmt.Errorf("read index of pack %s: %w", pack, err)
	}
	iter, err := idx.Entries()
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	var out []plumbing.Hash
	for {
		e, err := iter.Next()
		if err != nil {
			break // io.EOF ends the index
		}
		out = append(out, e.Hash)
	}
	return out, nil
}
