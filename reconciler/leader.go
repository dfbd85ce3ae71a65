package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaseName is the coordination.k8s.io Lease the replicas compete for, in arbor's namespace.
const LeaseName = "arbor-leader"

// LeaseTiming is the leader election's timing; the zero value uses 15s, 10s and 2s.
type LeaseTiming struct {
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// ErrLostLease is returned by RunWithLease when the lease is lost while ctx lives.
var ErrLostLease = errors.New("lost the leader lease")

// RunWithLease calls lead while this replica holds the Lease, and returns
// only after lead has returned: when ctx ends (the lease is released), or
// when the lease is lost (ErrLostLease; the caller should exit, so that two
// replicas never act at once).
func RunWithLease(ctx context.Context, cs kubernetes.Interface, namespace, identity string, timing LeaseTiming, log *slog.Logger, lead func(context.Context)) error {
	if timing.LeaseDuration == 0 {
		timing = LeaseTiming{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	}
	var (
		mu      sync.Mutex
		stopped bool // Run has returned: a late OnStartedLeading must not act
		running bool
		done    = make(chan struct{})
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1ObjectMeta(LeaseName, namespace),
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
		},
		LeaseDuration:   timing.LeaseDuration,
		RenewDeadline:   timing.RenewDeadline,
		RetryPeriod:     timing.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            "arbor",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				mu.Lock()
				if stopped || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				running = true
				mu.Unlock()
				defer close(done)
				log.Info("leading: this replica acts", "identity", identity)
				lead(ctx)
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != identity {
					log.Info("standing by", "leader", id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(ctx)
	mu.Lock()
	stopped = true
	wasRunning := running
	mu.Unlock()
	if !wasRunning {
		return nil
	}
	<-done
	if ctx.Err() != nil {
		return nil
	}
	return ErrLostLease
}

func metav1ObjectMeta(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}
