package reconciler

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// A webhook reaches whichever replica the Service picks, and only the app's
// owner acts (shard.go). Another replica that receives one records a
// refresh request for the app on the owner's Lease (an annotation per app
// holding the request's time); the owner reads its Lease at every renewal
// and refreshes the app at once. The request lives in the cluster, like a
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
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[RefreshAnnotationPrefix+app] = time.Now().UTC().Format(time.RFC3339Nano)
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: "arbor-relay"})
		return err
	})
}
