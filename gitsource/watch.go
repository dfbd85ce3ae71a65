package gitsource

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// Watch fires the Source's Trigger whenever a local repository's branches
// may have changed: a ref written or deleted under refs/heads (including new
// directories such as refs/heads/feature/), packed-refs rewritten, or HEAD
// moved. It returns once the watches are in place and keeps watching until
// ctx ends. A watcher error is logged and fires the Trigger too, so that the
// caller looks at the refs rather than trusting a watch that may have missed
// something. For a remote repository Watch does nothing and returns nil:
// polling and webhooks cover it.
func (s *Source) Watch(ctx context.Context) error {
	if !s.loc.local {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("%s: watch: %w", s.app, err)
	}
	heads := filepath.Join(s.common, "refs", "heads")
	dirs := []string{s.gitDir}
	if s.common != s.gitDir {
		dirs = append(dirs, s.common)
	}
	for _, d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return fmt.Errorf("%s: watch %s: %w", s.app, d, err)
		}
	}
	if err := addTree(w, heads); err != nil {
		w.Close()
		return fmt.Errorf("%s: watch %s: %w", s.app, heads, err)
	}
	go s.watchLoop(ctx, w, heads)
	return nil
}

func (s *Source) watchLoop(ctx context.Context, w *fsnotify.Watcher, heads string) {
	defer w.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if s.refEvent(w, heads, ev) {
				s.trigger.Fire()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.log.Warn("git watch error; refreshing", "app", s.app, "err", err)
			s.trigger.Fire()
		}
	}
}

// refEvent reports whether ev may change the branch listing, and starts
// watching directories created under refs/heads.
func (s *Source) refEvent(w *fsnotify.Watcher, heads string, ev fsnotify.Event) bool {
	if strings.HasSuffix(ev.Name, ".lock") {
		return false // git renames the lock into place; that event follows
	}
	if rel, err := filepath.Rel(heads, ev.Name); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		if ev.Has(fsnotify.Create) {
			if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
				if err := addTree(w, ev.Name); err != nil {
					s.log.Warn("git watch: cannot watch new ref directory", "app", s.app, "dir", ev.Name, "err", err)
				}
			}
		}
		return true
	}
	switch filepath.Base(ev.Name) {
	case "HEAD", "packed-refs":
		dir := filepath.Dir(ev.Name)
		return dir == s.gitDir || dir == s.common
	}
	return false
}

// addTree watches dir and every directory below it. A directory that
// vanishes meanwhile is skipped: its deletion is an event of its own.
func addTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if err := w.Add(p); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	})
}
