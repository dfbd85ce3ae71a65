package gitsource

import (
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestListingTimesOut lists a server that takes the request and never
// answers: the listing fails with ErrTimeout, and no branch is reported.
func TestListingTimesOut(t *testing.T) {
	f := newRemoteFixture(t, Options{Timeout: 300 * time.Millisecond})
	f.srv.stall = func(*http.Request) bool { return true }
	branches, _, err := f.src.ListBranches(testCtx(t))
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "within 300ms") {
		t.Fatalf("err = %v, want a git timeout naming 300ms", err)
	}
	if branches != nil {
		t.Fatalf("a listing that timed out returned branches %v", branches)
	}
	if !strings.HasPrefix(err.Error(), "shop: list ") {
		t.Errorf("err = %q, want it to name the app and the listing", err)
	}
}

// TestFetchTimesOut serves the ref advertisement but stalls the pack: the
// fetch fails with ErrTimeout and the cache points at nothing new.
func TestFetchTimesOut(t *testing.T) {
	f := newRemoteFixture(t, Options{Timeout: 300 * time.Millisecond})
	ctx := testCtx(t)
	branches, _, err := f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.stall = func(r *http.Request) bool { return r.Method == http.MethodPost }
	if err := f.src.Fetch(ctx, branches); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want a git timeout", err)
	}
	if _, err := f.src.Tree(ctx, branches["main"]); !errors.Is(err, ErrCommitNotFound) {
		t.Fatalf("Tree after a failed fetch: %v, want ErrCommitNotFound", err)
	}
}

// TestFetchSizeLimit pushes a commit holding 3 MiB that do not compress and
// fetches it under a 1 MiB limit: the fetch fails naming the limit, leaves
// no partial pack in the cache, and succeeds once the limit allows it.
func TestFetchSizeLimit(t *testing.T) {
	f := newRemoteFixture(t, Options{MaxFetchSize: 1 << 20})
	noise := make([]byte, 3<<20)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(f.work.dir, "big.bin"), string(noise), 0o644)
	f.work.commitAll("big")
	f.work.git("push", "-q", "origin", "main")
	ctx := testCtx(t)
	branches, _, err := f.src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = f.src.Fetch(ctx, branches)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 1 MiB of pack data") {
		t.Fatalf("err = %v, want the size limit of 1 MiB named", err)
	}
	packs, _ := os.ReadDir(filepath.Join(f.src.cacheDir, "objects", "pack"))
	for _, p := range packs {
		t.Errorf("the failed fetch left %s in the cache", p.Name())
	}
	if _, err := f.src.Tree(ctx, branches["main"]); !errors.Is(err, ErrCommitNotFound) {
		t.Fatalf("Tree after a refused fetch: %v, want ErrCommitNotFound", err)
	}

	f.src.maxPack = 8 << 20
	if err := f.src.Fetch(ctx, branches); err != nil {
		t.Fatalf("the same fetch under 8 MiB: %v", err)
	}
	if _, err := f.src.Tree(ctx, branches["main"]); err != nil {
		t.Fatal(err)
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{512 << 20: "512 MiB", 1 << 30: "1 GiB", 3 << 10: "3 KiB", 1536: "1536 bytes"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}
