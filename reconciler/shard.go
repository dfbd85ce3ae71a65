package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Sharding: every replica acts, each on its own share of the apps.
//
// Each replica holds a Lease of its own in arbor's namespace (ReplicaLease),
// renewed every RetryPeriod, whose annotation ClaimsAnnotation lists the
// apps it claims. Every replica watches the replica Leases and rebalances
// whenever one changes; a peer is live while its renewTime keeps moving
// (seen on this replica's own clock, when the watch delivers the change: no
// clock is compared with another's), and dead once it has not moved for the
// peer's lease duration, at which moment a timer rebalances. An app's owner
// is the live replica that ranks first for it by rendezvous hashing, so a
// replica that joins or leaves moves only the apps it wins or held.
//
// A handover never has two replicas acting on an app:
//
//  1. a replica acts on an app only after writing its claim and then
//     seeing, in a view of the Leases that includes that write (its own
//     Lease at that resourceVersion or later), no other live replica
//     claiming it (two replicas claiming at once: at least one sees the
//     other, and withdraws);
//  2. an owner that sees the app belong to another replica stops acting on
//     it (its reconciles are cancelled and waited for, beside the loop, which
//     goes on renewing) before it removes the claim, and the new owner waits
//     for that removal;
//  3. a replica that has not renewed its Lease for RenewDeadline (counted
//     from before the renewal was sent) stops acting on everything, by a
//     timer of its own; its peers treat its claims as live until
//     LeaseDuration after they saw the renewal, which is later.
//
// A replica that dies is so taken over LeaseDuration after its last renewal
// was seen, plus the claim's write and its echo on the watch; one that stops
// cleanly deletes its Lease and is taken over as soon as the peers see that.

// ReplicaLeasePrefix, followed by the replica's identity (made a valid
// name), names a replica's Lease.
const ReplicaLeasePrefix = "arbor-replica-"

// LabelReplicaLease marks the replica Leases of an install (its value).
const LabelReplicaLease = "arbor.dev/replica-lease"

// ClaimsAnnotation lists, comma-separated, the apps a replica claims.
const ClaimsAnnotation = "arbor.dev/claims"

// APIAddressAnnotation is the host:port of a replica's API.
const APIAddressAnnotation = "arbor.dev/api-address"

// ShardOptions are what a replica needs to take its share.
type ShardOptions struct {
	// Kube reaches arbor's namespace (the default cluster).
	Kube      kubernetes.Interface
	Namespace string
	Install   string
	Identity  string
	Timing    LeaseTiming
	Log       *slog.Logger
	// APIAddress is where the peers reach this replica's API (host:port,
	// published on its Lease): requests for an app it owns that reach
	// another replica are forwarded there (forward.go). "": not forwarded to.
	APIAddress string
}

// ownership is the apps this replica acts on, each with a context that ends
// when it stops, and the reconciles running for it.
type ownership struct {
	mu   sync.Mutex
	apps map[string]*claim
	// until is the renew deadline: no app is taken on, and no reconcile
	// begins, at or after it (0: unsharded tests that never expire).
	until time.Time
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
	if c == nil || o.expired(time.Now()) {
		return nil, nil, false
	}
	c.busy.Add(1)
	return c.ctx, c.busy.Done, true
}

// activate takes app on, unless the renew deadline has passed (false).
func (o *ownership) activate(parent context.Context, app string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.expired(time.Now()) {
		return false
	}
	if o.apps[app] == nil {
		ctx, cancel := context.WithCancel(parent)
		o.apps[app] = &claim{ctx: ctx, cancel: cancel}
		o.taken.Add(1)
	}
	return true
}

// expired: past the renew deadline (o.mu held).
func (o *ownership) expired(now time.Time) bool {
	return !o.until.IsZero() && !now.Before(o.until)
}

// extend moves the renew deadline to t (a renewal began at t minus the
// renew deadline and succeeded).
func (o *ownership) extend(t time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t.After(o.until) {
		o.until = t
	}
}

// deadline is the renew deadline.
func (o *ownership) deadline() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.until
}

// deactivateAll stops acting on every app, each as deactivate does.
func (o *ownership) deactivateAll() []string {
	apps := o.list()
	for _, a := range apps {
		o.deactivate(a)
	}
	return apps
}

// deactivate stops acting on app: its reconciles are cancelled, and
// deactivate returns once none runs.
func (o *ownership) deactivate(app string) {
	if c := o.stop(app); c != nil {
		c.busy.Wait()
	}
}

// stop stops acting on app without waiting: no reconcile of it begins
// any more, the running ones are cancelled; wait for the claim's busy
// group to see them end. nil when the replica did not act on app.
func (o *ownership) stop(app string) *claim {
	o.mu.Lock()
	c := o.apps[app]
	delete(o.apps, app)
	o.mu.Unlock()
	if c != nil {
		c.cancel()
	}
	return c
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

// shards runs this replica's Lease and decides its share. Its state is
// the loop's own (run, step); ownership and the published maps are shared.
type shards struct {
	o         ShardOptions
	own       *ownership
	apps      []string
	wake      func(app string)        // refresh app on every cluster
	wakeImage func(repository string) // a registry push relayed by a peer
	metrics   *Metrics

	store cache.Store   // the replica Leases, kept by a watch
	kick  chan struct{} // a Lease changed
	// pending is the apps claimed but not yet held, each with the
	// resourceVersion of the write of our Lease that published the claim
	// ("" until written); backoff the apps withdrawn from, until when.
	pending map[string]string
	backoff map[string]time.Time
	// releasing is the apps handed over whose reconciles have not all
	// ended yet: still claimed. released receives each when they have;
	// handing counts them.
	releasing  map[string]bool
	released   chan string
	handing    sync.WaitGroup
	published  string               // the claims last written
	peers      map[string]*peerSeen // by Lease name
	refreshes  map[string]string    // refresh annotations of our Lease already seen
	pushes     map[string]string    // registry annotations of our Lease already seen
	listed     bool                 // one step done: later refresh requests wake
	owners     atomic.Pointer[map[string]string]
	addrs      atomic.Pointer[map[string]string] // identity → API address, live peers
	pushLeases atomic.Pointer[[]string]          // live peers' Leases
}

type peerSeen struct {
	renew    string
	seenAt   time.Time
	duration time.Duration
}

func newShards(o ShardOptions, own *ownership, apps []string, wake func(string)) *shards {
	return &shards{o: o, own: own, apps: apps, wake: wake, wakeImage: func(string) {},
		kick: make(chan struct{}, 1), pending: map[string]string{}, backoff: map[string]time.Time{},
		releasing: map[string]bool{}, released: make(chan string, len(apps)),
		peers: map[string]*peerSeen{}, refreshes: map[string]string{}, pushes: map[string]string{}}
}

// watch starts the watch of the replica Leases and returns once it has
// listed them; every change kicks the loop, so that a peer's renewal or
// claim, and our own write, are seen when the API server sends them.
func (s *shards) watch(ctx context.Context) error {
	leases := s.o.Kube.CoordinationV1().Leases(s.o.Namespace)
	sel := LabelReplicaLease + "=" + s.o.Install
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return leases.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return leases.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &coordinationv1.Lease{}, 0, cache.Indexers{})
	kick := func() {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { kick() },
		UpdateFunc: func(any, any) { kick() },
		DeleteFunc: func(any) { kick() },
	}); err != nil {
		return err
	}
	s.store = inf.GetStore()
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("replica Leases: %w", ctx.Err())
	}
	return nil
}

// leases is the watch's current copy of the replica Leases.
func (s *shards) leases() []coordinationv1.Lease {
	var out []coordinationv1.Lease
	for _, o := range s.store.List() {
		if l, ok := o.(*coordinationv1.Lease); ok {
			out = append(out, *l)
		}
	}
	return out
}

// run renews the Lease every RetryPeriod and rebalances whenever a Lease
// changes or a peer's lease runs out, until ctx ends; then it stops acting
// on everything and deletes the Lease, so that the peers take over at once.
func (s *shards) run(ctx context.Context) {
	if s.store == nil {
		if err := s.watch(ctx); err != nil {
			return
		}
	}
	renew := time.NewTicker(s.o.Timing.RetryPeriod)
	defer renew.Stop()
	// Past the renew deadline, everything stops, whatever the loop is
	// doing (a renewal hanging on a dead connection included).
	watchdog := time.AfterFunc(time.Hour, s.deadlinePassed)
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	due := true
	for {
		s.step(ctx, s.leases(), due)
		watchdog.Reset(max(time.Until(s.own.deadline()), 0))
		expiry.Reset(s.nextExpiry(time.Now()))
		due = false
		select {
		case <-ctx.Done():
			watchdog.Stop()
			s.release()
			return
		case <-renew.C:
			due = true
		case <-s.kick:
		case <-expiry.C: // a peer's lease ran out: its apps are free
		}
	}
}

// release hands everything over on a clean stop: stop acting, then delete
// the Lease (claims and all) so the peers need not wait for it to expire.
func (s *shards) release() {
	s.own.deactivateAll()
	s.handing.Wait()
	s.setGauges()
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.o.Kube.CoordinationV1().Leases(s.o.Namespace).Delete(dctx, ReplicaLease(s.o.Identity), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		s.o.Log.Warn("could not delete this replica's Lease; its apps are taken over when it expires", "error", err)
	}
}

// deadlinePassed stops acting on every app once the Lease has not been
// renewed for RenewDeadline (the peers may take them LeaseDuration after
// they last saw a renewal, which is later).
func (s *shards) deadlinePassed() {
	if time.Now().Before(s.own.deadline()) {
		return // renewed meanwhile
	}
	if apps := s.own.deactivateAll(); len(apps) > 0 {
		s.o.Log.Warn("Lease not renewed in time: stopped on every app", "apps", apps)
	}
	s.setGauges()
}

// step is one round: note the peers' renewals, rebalance, and write our
// Lease when the claims changed or a renewal is due.
func (s *shards) step(ctx context.Context, items []coordinationv1.Lease, due bool) {
	for len(s.released) > 0 {
		delete(s.releasing, <-s.released)
	}
	now := time.Now()
	s.observe(ctx, items, now)
	if s.healthy(now) {
		s.decide(ctx, items, now)
	}
	if claims := s.claimSet(); due || claims != s.published {
		s.renew(ctx, claims)
	}
	if !s.healthy(time.Now()) {
		clear(s.pending)
		s.deadlinePassed()
	}
	s.listed = true
	s.setGauges()
}

func (s *shards) healthy(now time.Time) bool {
	return now.Before(s.own.deadline())
}

// nextExpiry is how long until the first live peer's lease runs out (an
// hour when none is live: the renewal ticker keeps the loop going).
func (s *shards) nextExpiry(now time.Time) time.Duration {
	next := time.Hour
	for _, p := range s.peers {
		if d := p.seenAt.Add(p.duration).Sub(now); d > 0 && d < next {
			next = d
		}
	}
	return next + time.Millisecond
}

// observe notes each peer's renewals, passes on the refresh requests and
// registry pushes written on our Lease, and deletes the Leases of replicas
// long dead.
func (s *shards) observe(ctx context.Context, items []coordinationv1.Lease, now time.Time) {
	mine := ReplicaLease(s.o.Identity)
	present := map[string]bool{}
	for i := range items {
		l := &items[i]
		if l.Name == mine {
			s.takeRefreshes(l)
			s.takePushes(l)
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
}

func (s *shards) live(name string, now time.Time) bool {
	p := s.peers[name]
	return p != nil && now.Sub(p.seenAt) < p.duration
}

// decide rebalances: hands over the apps another replica now wins, holds
// the claimed apps once a view that includes the claim's write shows no
// live peer claiming them, and claims the apps it wins that no live
// replica holds.
func (s *shards) decide(ctx context.Context, items []coordinationv1.Lease, now time.Time) {
	mine := ReplicaLease(s.o.Identity)
	live := []string{s.o.Identity}
	claimedBy := map[string][]string{}
	addrs := map[string]string{}
	var peerLeases []string
	seen := "" // the version of our own Lease in this view
	for i := range items {
		l := &items[i]
		if l.Name == mine {
			seen = l.ResourceVersion
			continue
		}
		if !s.live(l.Name, now) {
			continue
		}
		id := l.Name
		if l.Spec.HolderIdentity != nil {
			id = *l.Spec.HolderIdentity
		}
		live = append(live, id)
		peerLeases = append(peerLeases, l.Name)
		if a := l.Annotations[APIAddressAnnotation]; a != "" {
			addrs[id] = a
		}
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
		rv, isPending := s.pending[app]
		switch {
		case s.releasing[app]:
			owners[app] = s.o.Identity // until its reconciles have ended
		case want != s.o.Identity:
			delete(s.pending, app)
			if c := s.own.stop(app); c != nil {
				s.o.Log.Info("handing the app over", "app", app, "to", want)
				s.handOver(app, c)
				owners[app] = s.o.Identity
			}
		case s.own.owns(app):
			owners[app] = s.o.Identity
		case len(claimedBy[app]) > 0:
			delete(s.pending, app)
			if isPending && rv != "" {
				// Claimed by both: withdraw, and try again after a while
				// drawn at random, so that the two do not meet again.
				s.backoff[app] = now.Add(time.Duration(rand.Int64N(int64(s.o.Timing.RetryPeriod))) + s.o.Timing.RetryPeriod/2)
			}
		case isPending:
			if rv != "" && atLeast(seen, rv) && s.own.activate(ctx, app) {
				delete(s.pending, app)
				owners[app] = s.o.Identity
				s.o.Log.Info("acting on the app", "app", app)
				s.wake(app)
			}
		case now.After(s.backoff[app]):
			delete(s.backoff, app)
			s.pending[app] = ""
		}
	}
	s.owners.Store(&owners)
	s.addrs.Store(&addrs)
	s.pushLeases.Store(&peerLeases)
}

// handOver keeps app claimed until its running reconciles have ended,
// without holding up the loop (renewals go on meanwhile).
func (s *shards) handOver(app string, c *claim) {
	s.releasing[app] = true
	s.handing.Add(1)
	go func() {
		defer s.handing.Done()
		c.busy.Wait()
		s.released <- app
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}()
}

// atLeast reports whether resourceVersion seen is want or later. Versions
// are compared as numbers (etcd's revisions); one that is not a number is
// only ever equal to itself.
func atLeast(seen, want string) bool {
	a, errA := strconv.ParseUint(seen, 10, 64)
	b, errB := strconv.ParseUint(want, 10, 64)
	if errA != nil || errB != nil {
		return seen == want
	}
	return a >= b
}

func claims(l *coordinationv1.Lease) []string {
	v := l.Annotations[ClaimsAnnotation]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// claimSet is what our Lease claims: the apps acted on and the pending ones.
func (s *shards) claimSet() string {
	set := s.own.list()
	for a := range s.pending {
		set = append(set, a)
	}
	for a := range s.releasing {
		set = append(set, a)
	}
	sort.Strings(set)
	return strings.Join(slices.Compact(set), ",")
}

// renew writes our Lease (holder, duration, renewal time, claims and API
// address), keeping the refresh requests peers wrote on it and dropping
// the registry pushes already passed on. On success the renew deadline
// moves on, counted from before the request was sent, and the pending
// claims it published note its resourceVersion.
func (s *shards) renew(ctx context.Context, set string) {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, s.o.Timing.RenewDeadline)
	defer cancel()
	rv, err := s.write(rctx, set, start)
	if err != nil {
		if ctx.Err() == nil {
			s.o.Log.Warn("could not renew this replica's Lease", "error", err)
		}
		return
	}
	s.own.extend(start.Add(s.o.Timing.RenewDeadline))
	s.published = set
	claimed := strings.Split(set, ",")
	for a, was := range s.pending {
		if was == "" && slices.Contains(claimed, a) {
			s.pending[a] = rv
		}
	}
}

func (s *shards) write(ctx context.Context, set string, at time.Time) (string, error) {
	leases := s.o.Kube.CoordinationV1().Leases(s.o.Namespace)
	name := ReplicaLease(s.o.Identity)
	now := metav1.NewMicroTime(at)
	secs := int32(s.o.Timing.LeaseDuration / time.Second)
	id := s.o.Identity
	var l *coordinationv1.Lease
	if o, ok, _ := s.store.GetByKey(s.o.Namespace + "/" + name); ok {
		l = o.(*coordinationv1.Lease).DeepCopy()
	}
	var err error
	for try := range 2 { // once more, read afresh, after a conflict
		if l == nil || try > 0 {
			l, err = leases.Get(ctx, name, metav1.GetOptions{})
		}
		if apierrors.IsNotFound(err) {
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.o.Namespace,
				Labels: map[string]string{LabelReplicaLease: s.o.Install}}}
			l.Annotations = s.ownAnnotations(nil, set)
			l.Spec = coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs, RenewTime: &now, AcquireTime: &now}
			out, err := leases.Create(ctx, l, metav1.CreateOptions{FieldManager: fieldManager})
			if err == nil {
				return out.ResourceVersion, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return "", err
			}
			continue
		}
		if err != nil {
			return "", err
		}
		l.Annotations = s.ownAnnotations(l.Annotations, set)
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &id, &secs, &now
		out, err := leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: fieldManager})
		if err == nil {
			return out.ResourceVersion, nil
		}
		if !apierrors.IsConflict(err) {
			return "", err
		}
	}
	return "", err
}

// ownAnnotations are our Lease's annotations: the claims, the API address,
// the peers' refresh requests, and the registry pushes not yet passed on.
func (s *shards) ownAnnotations(old map[string]string, set string) map[string]string {
	out := map[string]string{}
	for k, v := range old {
		if strings.HasPrefix(k, RegistryPushAnnotationPrefix) && s.pushes[k] == v {
			continue // passed on already
		}
		out[k] = v
	}
	out[ClaimsAnnotation] = set
	if s.o.APIAddress != "" {
		out[APIAddressAnnotation] = s.o.APIAddress
	} else {
		delete(out, APIAddressAnnotation)
	}
	return out
}

// takeRefreshes wakes the apps whose refresh a peer requested on our Lease
// since the last step (the first step only learns what was asked before:
// every app is refreshed when it is taken anyway).
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
	if s.metrics == nil {
		return
	}
	n := len(s.own.list())
	s.metrics.ownedApps.Set(float64(n))
	if n > 0 {
		s.metrics.leader.Set(1)
	} else {
		s.metrics.leader.Set(0)
	}
}
