package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage"
)

// Bounds on what one listing or fetch of a remote may cost. A branch is
// untrusted, and so is the server: one that never answers, or sends more
// than any branch needs, must not hold the app's loop or fill the disk.
const (
	// DefaultTimeout bounds one listing or one fetch when Options.Timeout is zero.
	DefaultTimeout = 2 * time.Minute
	// DefaultMaxFetchSize bounds the pack data one fetch may receive when
	// Options.MaxFetchSize is zero.
	DefaultMaxFetchSize int64 = 512 << 20
)

// ErrTimeout is returned (wrapped) by ListBranches and Fetch when the remote
// did not finish within the Source's timeout.
var ErrTimeout = errors.New("git timeout")

// ErrTooLarge is returned (wrapped) by Fetch when the remote sent more pack
// data than the Source's size limit allows. Nothing of that fetch is kept.
var ErrTooLarge = errors.New("fetch size limit exceeded")

// withTimeout bounds one remote operation by the Source's timeout, with a
// cause that timedOut recognizes.
func (s *Source) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.timeout, ErrTimeout)
}

// timedOut turns an error of a remote operation under ctx into one that
// says the timeout tripped, when it did: go-git reports a cut connection in
// many ways, few of which wrap the context's error.
func (s *Source) timedOut(ctx context.Context, err error) error {
	if err == nil || !errors.Is(context.Cause(ctx), ErrTimeout) {
		return err
	}
	return fmt.Errorf("%w: no complete answer within %s: %w", ErrTimeout, s.timeout, err)
}

// limitedStore is the cache's storage as one fetch sees it: pack data
// written through it is counted, and the write fails once it passes max.
type limitedStore struct {
	storage.Storer
	max      int64
	exceeded atomic.Bool
}

// PackfileWriter is how go-git stores a fetched pack (storer.PackfileWriter):
// the cache's own writer behind a byte count.
func (l *limitedStore) PackfileWriter() (io.WriteCloser, error) {
	pw, ok := l.Storer.(storer.PackfileWriter)
	if !ok {
		return nil, errors.New("git cache cannot store packs")
	}
	w, err := pw.PackfileWriter()
	if err != nil {
		return nil, err
	}
	return &limitedWriter{w: w, l: l}, nil
}

type limitedWriter struct {
	w io.WriteCloser
	n int64
	l *limitedStore
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.n+int64(len(p)) > w.l.max {
		w.l.exceeded.Store(true)
		return 0, ErrTooLarge
	}
	w.n += int64(len(p))
	return w.w.Write(p)
}

func (w *limitedWriter) Close() error { return w.w.Close() }

// tooLarge says which limit a fetch hit.
func tooLarge(max int64) error {
	return fmt.Errorf("%w: the remote sent more than %s of pack data (raise the app's git_max_fetch_size if the repository really needs it)", ErrTooLarge, byteSize(max))
}

// byteSize writes n in the largest binary unit that divides it.
func byteSize(n int64) string {
	for _, u := range []struct {
		shift int
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// removePartialPacks deletes the temporary pack files a failed fetch left
// in the cache (go-git keeps them when the pack is cut short). Callers hold
// s.mu; arbor is the cache's only writer.
func (s *Source) removePartialPacks() {
	dir := filepath.Join(s.cacheDir, "objects", "pack")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "tmp_pack_") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				s.log.Warn("git cache: removing a partial pack failed", "app", s.app, "err", err)
			}
		}
	}
}
