package reconciler

import (
	"context"
	"fmt"
	"time"
)

// LeaseTiming is the timing of the replica Leases (shard.go); the zero value
// uses 15s, 10s and 2s.
type LeaseTiming struct {
	// LeaseDuration is how long a replica's claims stand after its last
	// renewal was seen; RenewDeadline how long a replica goes on acting
	// without a renewal (less than LeaseDuration: the difference is the
	// margin of a handover); RetryPeriod how often it renews and rebalances.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

func (t LeaseTiming) orDefaults() (LeaseTiming, error) {
	if t.LeaseDuration == 0 {
		t = LeaseTiming{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	}
	if t.RetryPeriod <= 0 || t.RenewDeadline <= t.RetryPeriod || t.LeaseDuration <= t.RenewDeadline {
		return t, fmt.Errorf("lease timing: want 0 < retry period (%s) < renew deadline (%s) < lease duration (%s)", t.RetryPeriod, t.RenewDeadline, t.LeaseDuration)
	}
	if t.LeaseDuration%time.Second != 0 {
		return t, fmt.Errorf("lease timing: the lease duration (%s) is whole seconds (a Lease holds seconds)", t.LeaseDuration)
	}
	return t, nil
}

// RunSharded runs this replica until ctx ends: its Lease, its share of the
// apps (shard.go) and every cluster's Reconciler acting on that share. Call
// it after Start. When ctx ends it stops acting, deletes its Lease (so that
// the other replicas take its apps at once) and returns.
func (f *Fleet) RunSharded(ctx context.Context, o ShardOptions) error {
	timing, err := o.Timing.orDefaults()
	if err != nil {
		return err
	}
	o.Timing = timing
	if o.Log == nil {
		o.Log = f.log
	}
	// Nothing is acted on before the first renewal.
	own := &ownership{apps: map[string]*claim{}, until: time.Unix(1, 0)}
	var apps []string
	for _, a := range f.home.opts.Config.Apps {
		apps = append(apps, a.Name)
	}
	s := newShards(o, own, apps, f.wake)
	s.metrics = f.home.opts.Metrics
	if im := f.home.opts.images; im != nil && im.relay != nil {
		s.wakeImage = func(repo string) { im.wakeRepo(repo) }
		im.relay.shard.Store(s)
	}
	for _, r := range f.members {
		r.owner, r.shard = own, s
	}
	f.shard.Store(s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx)
	}()
	_ = f.Lead(ctx)
	<-done
	return nil
}

// wake refreshes app on every cluster now.
func (f *Fleet) wake(app string) {
	for _, r := range f.members {
		if a := r.apps[app]; a != nil {
			a.wake()
		}
	}
}
