package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Sharding: every replica acts, each on its own share of the apps.
//
// Each replica holds a Lease of its own in arbor's namespace (ReplicaLease),
// renewed every RetryPeriod, whose annotation ClaimsAnnotation lists the
// apps it claims. Every replica lists the replica Leases at each renewal;
// a peer is live while its renewTime keeps moving (seen on this replica's
// own clock: no clock is compared with another's), and dead once it has not
// moved for the peer's lease duration. An app's owner is the live replica
// that ranks first for it by rendezvous hashing, so a replica that joins or
// leaves moves only the apps it wins or held.
//
// A handover never has two replicas acting on an app:
//
//  1. a replica acts on an app only after publishing its claim and then
//     seeing, in a listing made after that write, no other live replica
//     claiming it (two replicas claiming at once both withdraw and retry);
//  2. an owner that sees the app belong to another replica stops acting on
//     it (its reconciles are cancelled and waited for) before it removes the
//     claim, and the new owner waits for that removal;
//  3. a replica that has not renewed its Lease for RenewDeadline stops acting
//     on everything; its peers treat its claims as live until LeaseDuration
//     after they last saw its renewTime move, which is later.
//
// A replica that dies is so taken over LeaseDuration after its last renewal,
// plus two RetryPeriods (the claim, then its confirmation); one that stops
// cleanly deletes its Lease and is taken over within two RetryPeriods.

// ReplicaLeasePrefix, followed by the replica's identity (made a valid
// name), names a replica's Lease.
const ReplicaLeasePrefix = "arbor-replica-"

// LabelReplicaLease marks the replica Leases of an install (its value).
const LabelReplicaLease = "arbor.dev/replica-lease"

// ClaimsAnnotation lists, comma-separated, the apps a replica claims.
const ClaimsAnnotation = "arbor.dev/claims"

// ShardOptions are what a replica needs to take its share.
type ShardOptions struct {
	// Kube reaches arbor's namespace (the default cluster).
	Kube      kubernetes.Interface
	Namespace string
	Install   string
	Identity  string
	Timing    LeaseTiming
	Log       *slog.Logger
}

// ownership is the apps this replica acts on, each with a context that ends
// when it stops, and the reconciles running for it.
type ownership struct {
	mu   sync.Mutex
	apps map[string]*claim
	// taken counts the apps taken on: what this replica learned of an app
	// before it took it on (the deletions remembered, deleted.go) is read
	// again after.
	taken atomic.Int64
}

// generation changes whenever the replica takes an app on; 0 unsharded.
func (o *ownership) generation() int64 {
	if o == nil {
		return 0
	}
	return o.taken.Load()
}

type claim struct {
	ctx    context.Context
	cancel context.CancelFunc
	busy   sync.WaitGroup
}

// owns reports whether the replica acts on app; a nil ownership (no
// sharding: one Reconciler, led directly) owns every app.
func (o *ownership) owns(app string) bool {
	if o == nil {
		return true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.apps[app] != nil
}

// begin marks one reconcile of app as running, in ctx unless sharded (then
// in the claim's context); ok is false when the replica does not own app.
func (o *ownership) begin(ctx context.Context, app string) (context.Context, func(), bool) {
	if o == nil {
		return ctx, func() {}, true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.apps[app]
	if c == nil {
		return nil, nil, false
	}
	c.busy.Add(1)
	return c.ctx, c.busy.Done, true
}

func (o *ownership) activate(parent context.Context, app string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.apps[app] == nil {
		ctx, cancel := context.WithCancel(parent)
		o.apps[app] = &claim{ctx: ctx, cancel: cancel}
		o.taken.Add(1)
	}
}

// deactivate stops acting on app: its reconciles are cancelled, and
// deactivate returns once none runs.
func (o *ownership) deactivate(app string) {
	o.mu.Lock()
	c := o.apps[app]
	delete(o.apps, app)
	o.mu.Unlock()
	if c != nil {
		c.cancel()
		c.busy.Wait()
	}
}

func (o *ownership) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.apps))
	for a := range o.apps {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// shards runs this replica's Lease and decides its share.
type shards struct {
	o       ShardOptions
	own     *ownership
	apps    []string
	wake    func(app string) // refresh app on every cluster
	metrics *Metrics

	lastRenew time.Time
	pending   map[string]bool
	peers     map[string]*peerSeen // by Lease name
	refreshes map[string]string    // refresh annotations of our Lease already seen
	listed    bool                 // one listing done: later refresh requests wake
	owners    atomic.Pointer[map[string]string]
}

type peerSeen struct {
	renew    string
	seenAt   time.Time
	duration time.Duration
}

var invalidName = regexp.MustCompile(`[^a-z0-9.-]+`)

// ReplicaLease is the name of identity's Lease.
func ReplicaLease(identity string) string {
	n := strings.Trim(invalidName.ReplaceAllString(strings.ToLower(identity), "-"), "-.")
	if len(n) > 253-len(ReplicaLeasePrefix) {
		h := fnv.New64a()
		h.Write([]byte(identity))
		n = fmt.Sprintf("%s-%x", n[:200], h.Sum64())
	}
	return ReplicaLeasePrefix + n
}

// rank orders replicas for app (rendezvous hashing): the first is its owner.
func rank(app, replica string) uint64 {
	// SHA-256, not FNV: names that differ in their last byte (replica-a,
	// replica-b) must still rank independently.
	sum := sha256.Sum256([]byte(app + "\x00" + replica))
	return binary.BigEndian.Uint64(sum[:8])
}

func ownerOf(app string, live []string) string {
	best, bestRank := "", uint64(0)
	for _, r := range live {
		if k := rank(app, r); best == "" || k > bestRank || (k == bestRank && r < best) {
			best, bestRank = r, k
		}
	}
	return best
}

// run renews the Lease and rebalances every RetryPeriod until ctx ends,
// then stops acting on everything and deletes the Lease.
func (s *shards) run(ctx context.Context) {
	t := time.NewTicker(s.o.Timing.RetryPeriod)
	defer t.Stop()
	for {
		s.tick(ctx)
		select {
		case <-ctx.Done():
			for _, a := range s.own.list() {
				s.own.deactivate(a)
			}
			s.setGauges()
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.o.Kube.CoordinationV1().Leases(s.o.Namespace).Delete(dctx, ReplicaLease(s.o.Identity), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				s.o.Log.Warn("could not delete this replica's Lease; its apps are taken over when it expires", "error", err)
			}
			return
		case <-t.C:
		}
	}
}

func (s *shards) tick(ctx context.Context) {
	l, err := s.o.Kube.CoordinationV1().Leases(s.o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelReplicaLease + "=" + s.o.Install})
	if err != nil && ctx.Err() == nil {
		s.o.Log.Warn("could not list the replica Leases; the share stays as it is", "error", err)
	}
	if err == nil {
		s.observe(ctx, l.Items, time.Now())
		if s.healthy() {
			s.decide(ctx, l.Items)
		}
	}
	start := time.Now()
	if err := s.renew(ctx); err != nil {
		if ctx.Err() == nil {
			s.o.Log.Warn("could not renew this replica's Lease", "error", err)
		}
	} else {
		s.lastRenew = start
	}
	if !s.healthy() && ctx.Err() == nil {
		// Past the renew deadline: the peers may soon take our apps.
		if owned := s.own.list(); len(owned) > 0 || len(s.pending) > 0 {
			s.o.Log.Warn("Lease not renewed in time: stopping on every app", "apps", owned)
		}
		clear(s.pending)
		for _, a := range s.own.list() {
			s.own.deactivate(a)
		}
	}
	s.setGauges()
}

func (s *shards) healthy() bool {
	return !s.lastRenew.IsZero() && time.Since(s.lastRenew) < s.o.Timing.RenewDeadline
}

// observe notes each peer's renewals, passes on the refresh requests made on
// our Lease, and deletes the Leases of replicas long dead.
func (s *shards) observe(ctx context.Context, items []coordinationv1.Lease, now time.Time) {
	mine := ReplicaLease(s.o.Identity)
	present := map[string]bool{}
	for i := range items {
		l := &items[i]
		if l.Name == mine {
			s.takeRefreshes(l)
			continue
		}
		present[l.Name] = true
		renew := l.CreationTimestamp.UTC().String()
		if l.Spec.RenewTime != nil {
			renew = l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
		}
		d := s.o.Timing.LeaseDuration
		if l.Spec.LeaseDurationSeconds != nil {
			d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
		}
		p := s.peers[l.Name]
		if p == nil || p.renew != renew {
			s.peers[l.Name] = &peerSeen{renew: renew, seenAt: now, duration: d}
			continue
		}
		if now.Sub(p.seenAt) > 10*p.duration {
			// Dead for ten lease durations: gone for good (a replica that
			// comes back creates its Lease again). Only the version seen.
			rv := l.ResourceVersion
			err := s.o.Kube.CoordinationV1().Leases(s.o.Namespace).Delete(ctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
			if err == nil {
				s.o.Log.Info("deleted the Lease of a replica long dead", "lease", l.Name)
			}
		}
	}
	for n := range s.peers {
		if !present[n] {
			delete(s.peers, n) // deleted: released cleanly, its claims gone with it
		}
	}
	s.listed = true
}

func (s *shards) live(name string, now time.Time) bool {
	p := s.peers[name]
	return p != nil && now.Sub(p.seenAt) < p.duration
}

// decide rebalances: hands over the apps another replica now wins, confirms
// the claims published at the last renewal, and claims the apps it wins
// that no live replica holds.
func (s *shards) decide(ctx context.Context, items []coordinationv1.Lease) {
	now := time.Now()
	mine := ReplicaLease(s.o.Identity)
	live := []string{s.o.Identity}
	claimedBy := map[string][]string{}
	for i := range items {
		l := &items[i]
		if l.Name == mine || !s.live(l.Name, now) {
			continue
		}
		id := l.Name
		if l.Spec.HolderIdentity != nil {
			id = *l.Spec.HolderIdentity
		}
		live = append(live, id)
		for _, a := range claims(l) {
			claimedBy[a] = append(claimedBy[a], id)
		}
	}
	owners := map[string]string{}
	for _, app := range s.apps {
		want := ownerOf(app, live)
		owners[app] = want
		if len(claimedBy[app]) > 0 {
			owners[app] = claimedBy[app][0]
		}
		switch {
		case want != s.o.Identity:
			delete(s.pending, app)
			if s.own.owns(app) {
				s.o.Log.Info("handing the app over", "app", app, "to", want)
				s.own.deactivate(app)
			}
		case s.own.owns(app):
			owners[app] = s.o.Identity
		case s.pending[app]:
			delete(s.pending, app)
			if len(claimedBy[app]) == 0 {
				s.own.activate(ctx, app)
				owners[app] = s.o.Identity
				s.o.Log.Info("acting on the app", "app", app)
				s.wake(app)
			}
		case len(claimedBy[app]) == 0:
			s.pending[app] = true
		}
	}
	s.owners.Store(&owners)
}

func claims(l *coordinationv1.Lease) []string {
	v := l.Annotations[ClaimsAnnotation]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// renew writes our Lease: holder, duration, renewal time and claims (the
// apps acted on and the pending ones), keeping the refresh requests peers
// wrote on it.
func (s *shards) renew(ctx context.Context) error {
	leases := s.o.Kube.CoordinationV1().Leases(s.o.Namespace)
	name := ReplicaLease(s.o.Identity)
	var set []string
	set = append(set, s.own.list()...)
	for a := range s.pending {
		set = append(set, a)
	}
	sort.Strings(set)
	set = slices.Compact(set)
	now := metav1.NewMicroTime(time.Now())
	secs := int32(s.o.Timing.LeaseDuration / time.Second)
	id := s.o.Identity
	var err error
	for range 2 { // once more after a conflict with a peer's refresh request
		var l *coordinationv1.Lease
		l, err = leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.o.Namespace,
				Labels: map[string]string{LabelReplicaLease: s.o.Install}}}
			l.Annotations = map[string]string{ClaimsAnnotation: strings.Join(set, ",")}
			l.Spec = coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs, RenewTime: &now, AcquireTime: &now}
			_, err = leases.Create(ctx, l, metav1.CreateOptions{FieldManager: fieldManager})
			if err == nil || !apierrors.IsAlreadyExists(err) {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[ClaimsAnnotation] = strings.Join(set, ",")
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &id, &secs, &now
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: fieldManager})
		if !apierrors.IsConflict(err) {
			return err
		}
	}
	return err
}

// takeRefreshes wakes the apps whose refresh a peer requested on our Lease
// since the last listing (the first listing only learns what was asked
// before: every app is refreshed when it is taken anyway).
func (s *shards) takeRefreshes(l *coordinationv1.Lease) {
	for k, v := range l.Annotations {
		app, ok := strings.CutPrefix(k, RefreshAnnotationPrefix)
		if !ok || s.refreshes[k] == v {
			continue
		}
		s.refreshes[k] = v
		if s.listed && s.own.owns(app) {
			s.wake(app)
		}
	}
}

// ownerLease is the Lease of app's owner as last seen ("" before a listing).
func (s *shards) ownerLease(app string) string {
	if s == nil {
		return ""
	}
	m := s.owners.Load()
	if m == nil || (*m)[app] == "" {
		return ""
	}
	return ReplicaLease((*m)[app])
}

// owner is the identity of app's owner as last seen.
func (s *shards) owner(app string) string {
	if s == nil {
		return ""
	}
	if m := s.owners.Load(); m != nil {
		return (*m)[app]
	}
	return ""
}

func (s *shards) setGauges() {
	n := len(s.own.list())
	s.metrics.ownedApps.Set(float64(n))
	if n > 0 {
		s.metrics.leader.Set(1)
	} else {
		s.metrics.leader.Set(0)
	}
}
