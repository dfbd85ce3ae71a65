package reconciler

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Rendezvous hashing: every app has one owner among the live replicas, the
// shares are even enough, and a replica that joins takes apps only for
// itself (none moves between the others).
func TestOwnerOfMovesOnlyTheJoinersApps(t *testing.T) {
	var apps []string
	for i := range 300 {
		apps = append(apps, fmt.Sprintf("app-%d", i))
	}
	two := []string{"replica-a", "replica-b"}
	three := append([]string{"replica-c"}, two...)
	count := map[string]int{}
	for _, a := range apps {
		before, after := ownerOf(a, two), ownerOf(a, three)
		if after != before && after != "replica-c" {
			t.Errorf("%s moved from %s to %s when replica-c joined", a, before, after)
		}
		count[after]++
	}
	for _, r := range three {
		if count[r] < 60 {
			t.Errorf("replica %s owns %d of 300 apps: %v", r, count[r], count)
		}
	}
	if ownerOf("x", nil) != "" {
		t.Error("an owner without replicas")
	}
}

func TestReplicaLeaseIsAName(t *testing.T) {
	for _, id := range []string{"arbor-5d8f7-abcde", "Host_Name.local", strings.Repeat("x", 300)} {
		n := ReplicaLease(id)
		if len(n) > 253 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" || !strings.HasPrefix(n, ReplicaLeasePrefix) {
			t.Errorf("ReplicaLease(%q) = %q", id, n)
		}
	}
}

// An app handed over stops its reconciles before deactivate returns, and
// no reconcile of it begins afterwards.
func TestDeactivateWaitsForRunningReconciles(t *testing.T) {
	o := &ownership{apps: map[string]*claim{}}
	o.activate(context.Background(), "a")
	ctx, done, ok := o.begin(context.Background(), "a")
	if !ok {
		t.Fatal("begin refused an owned app")
	}
	finished := make(chan time.Time, 1)
	go func() {
		<-ctx.Done() // a reconcile ends when its context does
		time.Sleep(50 * time.Millisecond)
		finished <- time.Now()
		done()
	}()
	o.deactivate("a")
	returned := time.Now()
	if f := <-finished; returned.Before(f) {
		t.Error("deactivate returned before the running reconcile ended")
	}
	if _, _, ok := o.begin(context.Background(), "a"); ok || o.owns("a") {
		t.Error("a reconcile began after deactivate")
	}
	var none *ownership
	if !none.owns("a") {
		t.Error("no sharding must own every app")
	}
}
