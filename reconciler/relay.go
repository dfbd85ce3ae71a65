package reconciler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"strings"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/util/retry"
)

// A webhook reaches whichever replica the Service picks, and only the app's
// owner acts (shard.go). Another replica that receives one records a
// refresh request for the app on the owner's Lease (an annotation per app
// holding the request's time); the owner's watch of the Leases sees it,
// and it refreshes the app at once. The request lives in the cluster, like a
// deploy request: no replica needs another's address.

// RefreshAnnotationPrefix, followed by an app's name, is the annotation of
// the owner's Lease that holds the app's last refresh request.
const RefreshAnnotationPrefix = "refresh.arbor.dev/"

// watchTriggers passes app a's triggers (fsnotify, verified webhooks) to its
// poll loop while this replica acts on the app, and, for a remote
// repository, to the app's owner through its Lease otherwise.
func (r *Reconciler) watchTriggers(ctx context.Context, a *appRunner) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.src.Triggers():
		}
		if r.acts(a.cfg.Name) {
			a.wake()
			continue
		}
		if a.cfg.Local() || r.shard == nil {
			continue // the owner's own fsnotify watch sees it too
		}
		if err := r.requestRefresh(ctx, a.cfg.Name); err != nil && ctx.Err() == nil {
			r.log.Warn("could not pass a webhook to the app's owner; it acts on its next poll", "app", a.cfg.Name, "error", err)
		}
	}
}

// wake makes the app's poll loop refresh now (a wake already pending is enough).
func (a *appRunner) wake() {
	select {
	case a.refresh <- struct{}{}:
	default:
	}
}

// requestRefresh records on the Lease of app's owner that its repository changed.
func (r *Reconciler) requestRefresh(ctx context.Context, app string) error {
	name := r.shard.ownerLease(app)
	if name == "" {
		return fmt.Errorf("no owner of app %s known yet", app)
	}
	leases := r.opts.Home.CoordinationV1().Leases(r.opts.Config.Namespace)
	return annotateLease(ctx, leases, name, map[string]string{RefreshAnnotationPrefix + app: time.Now().UTC().Format(time.RFC3339Nano)})
}

// annotateLease sets annotations on the Lease name, read again after a
// conflict (its holder renews it meanwhile).
func annotateLease(ctx context.Context, leases coordinationclient.LeaseInterface, name string, set map[string]string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		maps.Copy(l.Annotations, set)
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: "arbor-relay"})
		return err
	})
}

// A registry notification names repositories, not apps: the replica that
// receives one cannot tell whose environment waits for the image, so it
// records the push on every live peer's Lease (an annotation per
// repository, RegistryPushAnnotationPrefix and a hash of its name, holding
// the time and the repository); each peer wakes its own waits for it and
// drops the annotation at its next renewal.

// RegistryPushAnnotationPrefix starts the annotation of a replica's Lease
// that passes it a registry push.
const RegistryPushAnnotationPrefix = "registry.arbor.dev/"

// maxRelayedPushes bounds the repositories of one notification passed on
// (a peer's Lease stays small; the rest are found by polling).
const maxRelayedPushes = 32

// pushRelay passes the registry notifications this replica accepts to its
// peers once the replica is sharded.
type pushRelay struct {
	shard atomic.Pointer[shards]
}

func (p *pushRelay) pushed(repos []string) {
	s := p.shard.Load()
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.relayPushes(ctx, repos); err != nil {
		s.o.Log.Warn("could not pass a registry notification to the other replicas; their waits find the image by polling", "error", err)
	}
}

// relayPushes records repos on every live peer's Lease.
func (s *shards) relayPushes(ctx context.Context, repos []string) error {
	if len(repos) > maxRelayedPushes {
		s.o.Log.Warn("registry notification: only the first repositories are passed on", "repositories", len(repos), "passed", maxRelayedPushes)
		repos = repos[:maxRelayedPushes]
	}
	peers := s.pushLeases.Load()
	if peers == nil {
		return nil
	}
	leases := s.o.Kube.CoordinationV1().Leases(s.o.Namespace)
	at := time.Now().UTC().Format(time.RFC3339Nano)
	set := make(map[string]string, len(repos))
	for _, r := range repos {
		set[pushKey(r)] = at + " " + r
	}
	var errs []error
	for _, name := range *peers {
		if err := annotateLease(ctx, leases, name, set); err != nil {
			errs = append(errs, fmt.Errorf("lease %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func pushKey(repo string) string {
	h := fnv.New64a()
	h.Write([]byte(repo))
	return fmt.Sprintf("%s%016x", RegistryPushAnnotationPrefix, h.Sum64())
}

// takePushes wakes this replica's waits for the repositories peers passed
// on since the last step, and forgets those no longer on the Lease.
func (s *shards) takePushes(l *coordinationv1.Lease) {
	for k := range s.pushes {
		if _, ok := l.Annotations[k]; !ok {
			delete(s.pushes, k)
		}
	}
	for k, v := range l.Annotations {
		if !strings.HasPrefix(k, RegistryPushAnnotationPrefix) || s.pushes[k] == v {
			continue
		}
		s.pushes[k] = v
		if _, repo, ok := strings.Cut(v, " "); ok {
			s.wakeImage(repo)
		}
	}
}
