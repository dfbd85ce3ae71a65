package reconciler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/arbordev/arbor/internal/testcluster"
)

// raceApps are the apps the shards tests split.
func raceApps(n int) []string {
	var apps []string
	for i := range n {
		apps = append(apps, fmt.Sprintf("app-%d", i))
	}
	return apps
}

func testShards(t *testing.T, kube kubernetes.Interface, ns, id string, apps []string, timing LeaseTiming, wake func(string)) *shards {
	t.Helper()
	o := ShardOptions{Kube: kube, Namespace: ns, Install: "race", Identity: id, Timing: timing,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), APIAddress: "127.0.0.1:1"}
	return newShards(o, &ownership{apps: map[string]*claim{}, until: time.Unix(1, 0)}, apps, wake)
}

// bothAct is the apps a and b both act on.
func bothAct(a, b *shards) []string {
	var out []string
	for _, app := range a.own.list() {
		if b.own.owns(app) {
			out = append(out, app)
		}
	}
	return out
}

// Two replicas start at once on the real cluster: each decides its share
// from a view of the Leases made before the other's first write (so each
// wins every app), and acts on none of them until a view that includes its
// own claim's write shows the other's claims; then both withdraw, and in
// the end every app has exactly one replica acting on it, its hash winner.
// At no point, checked after every step and by sampling while the loops
// run, do both act on one app.
func TestShardsRacingForTheSameAppsNeverBothAct(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	apps := raceApps(20)
	timing := LeaseTiming{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}
	a := testShards(t, cs, ns, "replica-a", apps, timing, func(string) {})
	b := testShards(t, cs, ns, "replica-b", apps, timing, func(string) {})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, s := range []*shards{a, b} {
		if err := s.watch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		if both := bothAct(a, b); len(both) > 0 {
			t.Fatalf("%s: both replicas act on %v", when, both)
		}
	}
	// Blind: each has listed nothing yet (the first renewal, then two
	// decisions on that empty view, the second after its own claim write).
	for round := range 3 {
		a.step(ctx, nil, round == 0)
		b.step(ctx, nil, round == 0)
		check(fmt.Sprintf("blind round %d", round))
	}
	if len(a.pending) != len(apps) || len(b.pending) != len(apps) {
		t.Fatalf("each replica should claim every app it saw no one else claim: a %d, b %d of %d", len(a.pending), len(b.pending), len(apps))
	}
	// Now each sees, in a view with its own write, the other's claims.
	eventually(t, func() bool { return a.sees(b) && b.sees(a) })
	a.step(ctx, a.leases(), false)
	check("a sees b's claims")
	b.step(ctx, b.leases(), false)
	check("b sees a's claims")

	var overlap atomic.Value
	var wg sync.WaitGroup
	rctx, stop := context.WithCancel(ctx)
	for _, s := range []*shards{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(rctx) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for rctx.Err() == nil {
			if both := bothAct(a, b); len(both) > 0 && overlap.Load() == nil {
				overlap.Store(both)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	held := map[string]string{}
	eventually(t, func() bool {
		clear(held)
		for _, s := range []*shards{a, b} {
			for _, app := range s.own.list() {
				held[app] = s.o.Identity
			}
		}
		return len(a.own.list())+len(b.own.list()) == len(apps) && len(held) == len(apps)
	})
	stop() // the replicas let go of everything as they stop
	wg.Wait()
	if o := overlap.Load(); o != nil {
		t.Fatalf("both replicas acted on %v at once", o)
	}
	for _, app := range apps {
		if want := ownerOf(app, []string{"replica-a", "replica-b"}); held[app] != want {
			t.Errorf("%s held by %q, want its hash winner %s", app, held[app], want)
		}
	}
}

// sees reports whether s's watch holds its own Lease at its last write
// and o's Lease at o's last write.
func (s *shards) sees(o *shards) bool {
	mine, peer := "", ""
	for _, l := range s.leases() {
		switch l.Name {
		case ReplicaLease(s.o.Identity):
			mine = l.Annotations[ClaimsAnnotation]
		case ReplicaLease(o.o.Identity):
			peer = l.Annotations[ClaimsAnnotation]
		}
	}
	return mine == s.published && peer == o.published && mine != ""
}

func eventually(t *testing.T, ok func() bool) {
	t.Helper()
	for range 3000 {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 30s")
}

// cuttableKube is a client of the test cluster through a proxy on
// loopback that, once cut, holds every request until its client gives up
// (an API server that stopped answering).
func cuttableKube(t *testing.T) (kubernetes.Interface, func()) {
	t.Helper()
	rp := testcluster.Proxy(t)
	var cut atomic.Bool
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cut.Load() {
			select {
			case <-r.Context().Done():
			case <-gone:
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(gone); srv.Close() })
	kube, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return kube, func() { cut.Store(true) }
}

// A replica whose API server stops answering stops acting on its apps by
// its own renew deadline, before its peer — which sees its Lease stop
// moving — takes them: the moment the peer first acts on one of them
// comes after the moment the cut replica acts on none (polled every
// millisecond, so noted late if anything). The retry period here is long
// (1.5s of a 2s renew deadline) so that the replica's loop, stuck in a
// renewal that hangs, notices only after the lease would have expired: it
// is the deadline's own timer that stops it in time.
func TestShardsStopActingAtTheRenewDeadline(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	apps := raceApps(12)
	timing := LeaseTiming{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 1500 * time.Millisecond}
	kube, cut := cuttableKube(t)
	a := testShards(t, kube, ns, "replica-a", apps, timing, func(string) {})
	var mu sync.Mutex
	var bFirst time.Time
	b := testShards(t, cs, ns, "replica-b", apps, timing, func(string) {
		mu.Lock()
		defer mu.Unlock()
		if bFirst.IsZero() {
			bFirst = time.Now()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); a.run(ctx) }()
	eventually(t, func() bool { return len(a.own.list()) == len(apps) })
	wg.Add(1)
	go func() { defer wg.Done(); b.run(ctx) }()
	// b joins: it takes its share from a, which hands it over.
	eventually(t, func() bool { return len(b.own.list()) > 0 && len(a.own.list())+len(b.own.list()) == len(apps) })
	kept := a.own.list()
	mu.Lock()
	bFirst = time.Time{}
	mu.Unlock()
	cut()
	var aStopped time.Time
	for len(a.own.list()) > 0 {
		time.Sleep(time.Millisecond)
	}
	aStopped = time.Now()
	eventually(t, func() bool { return len(b.own.list()) == len(apps) })
	mu.Lock()
	defer mu.Unlock()
	if bFirst.IsZero() || bFirst.Before(aStopped) {
		t.Fatalf("b began acting on %v's apps at %s, a stopped at %s: both acted at once", kept, bFirst.Format(time.StampMilli), aStopped.Format(time.StampMilli))
	}
	t.Logf("a stopped %s before b took its %d apps over", bFirst.Sub(aStopped).Round(time.Millisecond), len(kept))
}

// Rule 2, hand over then let go: a replica holding an app that a joining
// replica wins lets go of it only once its running reconcile of the app has
// ended; the joiner acts on it only after that. The reconcile is held open
// (its context is cancelled at once) for a few retry periods after the old
// owner stopped acting on the app, long enough for the joiner to have
// claimed it otherwise. Meanwhile the old owner goes on renewing its Lease.
func TestShardsHandOverOnlyAfterRunningReconcilesEnd(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	apps := raceApps(12)
	timing := LeaseTiming{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond}
	a := testShards(t, cs, ns, "replica-a", apps, timing, func(string) {})
	b := testShards(t, cs, ns, "replica-b", apps, timing, func(string) {})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); a.run(ctx) }()
	eventually(t, func() bool { return len(a.own.list()) == len(apps) })
	app := ""
	for _, x := range apps {
		if ownerOf(x, []string{"replica-a", "replica-b"}) == "replica-b" {
			app = x
			break
		}
	}
	rctx, done, ok := a.own.begin(ctx, app)
	if !ok {
		t.Fatalf("replica-a does not act on %s", app)
	}
	wg.Add(1)
	go func() { defer wg.Done(); b.run(ctx) }()
	<-rctx.Done() // a cancels the reconcile as it hands the app over
	renewed := a.own.deadline()
	time.Sleep(5 * timing.RetryPeriod)
	if b.own.owns(app) {
		done()
		t.Fatalf("replica-b acts on %s while replica-a's reconcile of it still runs", app)
	}
	if !a.own.deadline().After(renewed) {
		done()
		t.Fatal("replica-a stopped renewing its Lease while it waited for the reconcile to end")
	}
	done()
	eventually(t, func() bool { return b.own.owns(app) })
}
