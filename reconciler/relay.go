package reconciler

import (
	"context"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// A webhook reaches whichever replica the Service picks, and only the leader
// acts. A standby that receives one records a refresh request for the app
// on the leader Lease (an annotation per app holding the request's time);
// the leader watches the Lease and refreshes the app at once. The request
// lives in the cluster, like a deploy request: no replica needs another's
// address, and a request made while the leadership changes hands is seen by
// the next leader's first list.

// RefreshAnnotationPrefix, followed by an app's name, is the annotation of
// the leader Lease that holds the app's last refresh request.
const RefreshAnnotationPrefix = "refresh.arbor.dev/"

// watchTriggers passes app a's triggers (fsnotify, verified webhooks) to its
// poll loop while this replica leads, and, for a remote repository, to the
// leader through the Lease while it stands by.
func (r *Reconciler) watchTriggers(ctx context.Context, a *appRunner) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.src.Triggers():
		}
		if r.leading.Load() {
			a.wake()
			continue
		}
		if a.cfg.Local() {
			continue // the leader's own fsnotify watch sees it too
		}
		if err := r.requestRefresh(ctx, a.cfg.Name); err != nil && ctx.Err() == nil {
			r.log.Warn("could not pass a webhook to the leader; it acts on its next poll", "app", a.cfg.Name, "error", err)
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

// requestRefresh records on the leader Lease that app's repository changed.
func (r *Reconciler) requestRefresh(ctx context.Context, app string) error {
	leases := r.opts.Home.CoordinationV1().Leases(r.opts.Config.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := leases.Get(ctx, LeaseName, metav1.GetOptions{})
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

// watchRefreshRequests wakes, while this replica leads, every app whose
// refresh a standby requested on the Lease since the watch began.
func (r *Reconciler) watchRefreshRequests(ctx context.Context) {
	leases := r.opts.Home.CoordinationV1().Leases(r.opts.Config.Namespace)
	sel := fields.OneTermEqualSelector("metadata.name", LeaseName).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return leases.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return leases.Watch(ctx, o)
		},
	}
	seen := map[string]string{}
	look := func(obj any, wake bool) {
		l, ok := obj.(*coordinationv1.Lease)
		if !ok {
			return
		}
		for k, v := range l.Annotations {
			app, ok := strings.CutPrefix(k, RefreshAnnotationPrefix)
			if !ok || seen[k] == v {
				continue
			}
			seen[k] = v
			if a := r.apps[app]; a != nil && wake {
				a.wake()
			}
		}
	}
	_, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &coordinationv1.Lease{},
		Handler: cache.ResourceEventHandlerFuncs{
			// The first sight only learns what was asked before: every app
			// is refreshed when a leader starts anyway.
			AddFunc:    func(obj any) { look(obj, false) },
			UpdateFunc: func(_, obj any) { look(obj, true) },
		},
	})
	ctrl.RunWithContext(ctx)
}
