package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/arbordev/arbor/workflow"
)

// An environment deleted through the API stays deleted while its branch
// stays at the commit it had: the next push creates it again (as for an
// expired one). Its namespace is gone, so the replica acting on its app
// remembers the deletion on the Lease arbor-deletions in arbor's namespace,
// one annotation per environment, which a replica reads when it starts to
// act and again when it takes an app on; the annotation goes when the branch
// moves or goes.

// DeletionsLease is the Lease in arbor's namespace whose annotations
// remember the environments deleted on request (it is never held).
const DeletionsLease = "arbor-deletions"

// DeletedAnnotationPrefix, followed by APP.HASH (the branch's hash), is the
// annotation of DeletionsLease that remembers an environment deleted on
// request.
const DeletedAnnotationPrefix = "deleted.arbor.dev/"

// PhaseDeleted is an environment deleted on request, until its branch's next push.
const PhaseDeleted = "Deleted"

// maxDeletions bounds the deletions remembered (the Lease's annotations
// hold 256 KiB); beyond it a delete request waits, with an error.
const maxDeletions = 1000

// deletion is an environment deleted on request.
type deletion struct {
	Branch string    `json:"branch"`
	Commit string    `json:"commit"` // the branch's commit when it was deleted
	At     time.Time `json:"at"`
	By     string    `json:"by,omitempty"`
}

// deletions are this Reconciler's copy of the deletions on the Lease (the
// replica acting on an app writes its deletions).
type deletions struct {
	mu     sync.Mutex
	loaded bool
	gen    int64 // the ownership generation when loaded
	m      map[envKey]deletion
}

func deletionAnnotation(key envKey) string {
	h := sha256.Sum256([]byte(key.Branch))
	return DeletedAnnotationPrefix + key.App + "." + hex.EncodeToString(h[:8])
}

// reset makes the next term read the Lease again.
func (d *deletions) reset() {
	d.mu.Lock()
	d.loaded, d.m = false, nil
	d.mu.Unlock()
}

// deletionOf returns the deletion of key, reading the Lease once per term
// and again after an app is taken on.
func (r *Reconciler) deletionOf(ctx context.Context, key envKey) (deletion, bool, error) {
	d := &r.deleted
	d.mu.Lock()
	defer d.mu.Unlock()
	if gen := r.owner.generation(); !d.loaded || d.gen != gen {
		d.gen = gen
		l, err := r.opts.Home.CoordinationV1().Leases(r.opts.Config.Namespace).Get(ctx, DeletionsLease, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			l, err = &coordinationv1.Lease{}, nil // nothing deleted on request yet
		}
		if err != nil {
			return deletion{}, false, fmt.Errorf("read the deleted environments from Lease %s: %w", DeletionsLease, err)
		}
		d.m = map[envKey]deletion{}
		for k, v := range l.Annotations {
			rest, ok := strings.CutPrefix(k, DeletedAnnotationPrefix)
			if !ok {
				continue
			}
			app, _, _ := strings.Cut(rest, ".")
			var del deletion
			if json.Unmarshal([]byte(v), &del) != nil || del.Branch == "" {
				continue
			}
			d.m[envKey{App: app, Branch: del.Branch}] = del
		}
		d.loaded = true
	}
	del, ok := d.m[key]
	return del, ok, nil
}

// setDeletion records (del non-nil) or forgets key's deletion on the Lease,
// then in memory.
func (r *Reconciler) setDeletion(ctx context.Context, key envKey, del *deletion) error {
	var value []byte
	if del != nil {
		var err error
		if value, err = json.Marshal(del); err != nil {
			return err
		}
		r.deleted.mu.Lock()
		n := len(r.deleted.m)
		r.deleted.mu.Unlock()
		if n >= maxDeletions {
			return fmt.Errorf("%s: %d environments are remembered as deleted, the most there may be: push to their branches or delete them", key, n)
		}
	}
	ann := deletionAnnotation(key)
	leases := r.opts.Home.CoordinationV1().Leases(r.opts.Config.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := leases.Get(ctx, DeletionsLease, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && del != nil {
			// the first deletion: the Lease, never held, holds the annotations
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: DeletionsLease, Annotations: map[string]string{ann: string(value)}}}
			_, err = leases.Create(ctx, l, metav1.CreateOptions{FieldManager: "arbor-delete"})
			return err
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, had := l.Annotations[ann]; del == nil && !had {
			return nil
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		if del == nil {
			delete(l.Annotations, ann)
		} else {
			l.Annotations[ann] = string(value)
		}
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: "arbor-delete"})
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: remember the deletion on Lease %s: %w", key, DeletionsLease, err)
	}
	r.deleted.mu.Lock()
	if r.deleted.m == nil {
		r.deleted.m = map[envKey]deletion{}
	}
	if del == nil {
		delete(r.deleted.m, key)
	} else {
		r.deleted.m[key] = *del
	}
	r.deleted.mu.Unlock()
	return nil
}

// deleteOnRequest handles a listed branch's delete request and its
// deletion: done is true when the environment is (being) deleted on
// request and nothing else is to be done, deleted when this call deleted
// it. A branch that moved on from the commit it was deleted at is
// forgotten, and reconciled as usual.
func (r *Reconciler) deleteOnRequest(ctx context.Context, key envKey, rec *envRecord, commit string) (done, deleted bool, err error) {
	// (An environment without this install's label is deleted only once
	// adopted: its request waits, as the API refuses it.)
	if rec != nil && !rec.Deleting && !rec.Legacy && rec.Annotations[workflow.AnnotationDeleteRequested] != "" {
		at, _ := time.Parse(time.RFC3339Nano, rec.Annotations[workflow.AnnotationDeleteRequested])
		del := deletion{Branch: key.Branch, Commit: commit, At: at.UTC(), By: rec.Annotations[workflow.AnnotationDeleteRequestedBy]}
		// remembered first: a deletion that could not be remembered would
		// be undone by the next listing
		if err := r.setDeletion(ctx, key, &del); err != nil {
			return true, false, err
		}
		r.log.Info("deleting the environment on request", "app", key.App, "branch", key.Branch, "by", del.By)
		if err := r.remove(ctx, key, rec); err != nil {
			return true, false, err
		}
		r.status.set(key, deletedState(key, del))
		return true, true, nil
	}
	del, ok, err := r.deletionOf(ctx, key)
	if err != nil || !ok {
		return err != nil, false, err
	}
	if del.Commit == commit {
		if st := r.status.get(key); st == nil || st.Phase != PhaseDeleted {
			r.status.set(key, deletedState(key, del))
		}
		return true, false, nil
	}
	return false, false, r.setDeletion(ctx, key, nil) // pushed since: created again
}

func deletedState(key envKey, del deletion) *envState {
	who := ""
	if del.By != "" {
		who = " by " + del.By
	}
	return &envState{App: key.App, Branch: key.Branch, Commit: del.Commit, Phase: PhaseDeleted, LastTransition: time.Now().UTC(),
		LastError: fmt.Sprintf("deleted on request%s at %s; the branch's next push creates it again", who, del.At.Format(time.RFC3339))}
}

// forgetDeletion forgets the deletion of a branch that is gone.
func (r *Reconciler) forgetDeletion(ctx context.Context, key envKey) error {
	_, ok, err := r.deletionOf(ctx, key)
	if err != nil || !ok {
		return err
	}
	return r.setDeletion(ctx, key, nil)
}
