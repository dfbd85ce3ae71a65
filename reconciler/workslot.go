package reconciler

import (
	"context"
	"sync"
)

// waitingPerWorker is how many environments may wait for their rollouts
// per `concurrency` slot, beside the ones at work: a reconcile waiting
// for its Deployments to roll out gives its slot to another environment
// (rolloutwait.go) and takes one back when the rollout is over.
const waitingPerWorker = 3

// workSlot is a reconcile's share of `concurrency`: held while it loads,
// renders, applies and records, given up while it waits for a rollout.
type workSlot struct {
	sem  chan struct{}
	mu   sync.Mutex
	held bool
}

// acquire takes a slot, waiting for one; false when ctx ends first.
func (s *workSlot) acquire(ctx context.Context) bool {
	select {
	case s.sem <- struct{}{}:
		s.mu.Lock()
		s.held = true
		s.mu.Unlock()
		return true
	case <-ctx.Done():
		return false
	}
}

// release gives the slot back, if held.
func (s *workSlot) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held {
		s.held = false
		<-s.sem
	}
}

type slotKey struct{}

func withSlot(ctx context.Context, s *workSlot) context.Context {
	return context.WithValue(ctx, slotKey{}, s)
}

// slotOf is the reconcile's slot carried by ctx, or nil.
func slotOf(ctx context.Context) *workSlot {
	s, _ := ctx.Value(slotKey{}).(*workSlot)
	return s
}
