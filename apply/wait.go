package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// WaitOptions configure Wait.
type WaitOptions struct {
	// Namespace is the environment namespace, as for Apply.
	Namespace string
	// Timeout bounds the whole wait; zero waits as long as ctx allows.
	Timeout time.Duration
}

// ErrJobFailed marks a Job that ended in failure.
var ErrJobFailed = errors.New("job failed")

// noReadiness are kinds that are ready as soon as they exist: waiting on them
// sends no request.
var noReadiness = map[string]bool{
	"Namespace": true, "ConfigMap": true, "Secret": true, "Service": true, "ServiceAccount": true,
	"Role": true, "RoleBinding": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"PersistentVolumeClaim": true, "Ingress": true, "NetworkPolicy": true, "ResourceQuota": true,
	"LimitRange": true, "PodDisruptionBudget": true, "HorizontalPodAutoscaler": true, "CronJob": true,
	"EndpointSlice": true, "Endpoints": true, "IngressClass": true, "PriorityClass": true, "StorageClass": true,
}

// Wait blocks until every object is ready: a Deployment, StatefulSet or
// DaemonSet has rolled out (its controller observed the latest generation and
// every replica is updated and available), a Job has completed, a
// CustomResourceDefinition is established, anything else with a Ready
// condition has it True; other kinds are ready at once. It watches the
// objects rather than polling. A failed Job is an error (ErrJobFailed) with
// the Job's reason; a timeout names each object not ready and what it waits for.
func (e *Engine) Wait(ctx context.Context, objs []*unstructured.Unstructured, opts WaitOptions) error {
	items, err := e.prepare(ctx, objs, opts.Namespace)
	if err != nil {
		return err
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	if err := e.mapDeferred(ctx, items); err != nil {
		return err
	}
	return e.waitItems(ctx, items)
}

func (e *Engine) waitItems(ctx context.Context, items []*item) error {
	var todo []*item
	for _, it := range items {
		if !noReadiness[it.ref.Kind] {
			todo = append(todo, it)
		}
	}
	return e.forEach(ctx, todo, e.waitReady)
}

// waitReady watches one object until it is ready, failed, deleted or ctx ends.
func (e *Engine) waitReady(ctx context.Context, it *item) error {
	last := "not observed yet"
	err := e.watchUntil(ctx, it, func(u *unstructured.Unstructured) (bool, error) {
		if u == nil {
			return false, it.errorf("does not exist (deleted while waiting for it to become ready)")
		}
		ready, msg, err := Ready(u)
		last = msg
		return ready, err
	})
	if err != nil && ctx.Err() != nil {
		return it.errorf("not ready: %s (%w)", last, context.Cause(ctx))
	}
	return err
}

// watchUntil lists and watches the object of it by name (client-go's
// UntilWithSync: an informer on that one name, which lists again when the
// server ends a watch) until cond is true or fails; cond gets nil when the
// object does not exist.
func (e *Engine) watchUntil(ctx context.Context, it *item, cond func(*unstructured.Unstructured) (bool, error)) error {
	rc := e.resource(it)
	sel := fields.OneTermEqualSelector("metadata.name", it.ref.Name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			// The informer would list at resourceVersion "0", which the
			// server may answer from a stale cache: an object as it was
			// before the apply just made could look ready. Read it fresh.
			o.FieldSelector, o.ResourceVersion, o.ResourceVersionMatch = sel, "", ""
			return rc.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return rc.Watch(ctx, o)
		},
	}
	present := func(store cache.Store) (bool, error) {
		objs := store.List()
		if len(objs) == 0 {
			return cond(nil)
		}
		u, _ := objs[0].(*unstructured.Unstructured)
		return cond(u)
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, present, func(ev watch.Event) (bool, error) {
		u, _ := ev.Object.(*unstructured.Unstructured)
		if ev.Type == watch.Deleted || u == nil {
			return cond(nil)
		}
		return cond(u)
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err() // the caller names what was not ready
	}
	return err
}

// waitGone watches until the object with uid is gone (or replaced by another
// object of the same name).
func (e *Engine) waitGone(ctx context.Context, it *item, uid types.UID, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var finalizers []string
	err := e.watchUntil(ctx, it, func(u *unstructured.Unstructured) (bool, error) {
		if u == nil || u.GetUID() != uid {
			return true, nil
		}
		finalizers = u.GetFinalizers()
		return false, nil
	})
	if err != nil {
		if len(finalizers) > 0 {
			return it.errorf("still present after %s, held by finalizers %v", timeout, finalizers)
		}
		return it.errorf("still present after %s: %w", timeout, err)
	}
	return nil
}

// establishCRDs waits for the CustomResourceDefinitions of a group to be
// established, so that the next groups can use their kinds.
func (e *Engine) establishCRDs(ctx context.Context, group []*item) error {
	var crds []*item
	for _, it := range group {
		if it.ref.Kind == "CustomResourceDefinition" {
			crds = append(crds, it)
		}
	}
	if len(crds) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return e.waitItems(ctx, crds)
}

// Ready is Wait's test of one object as read: whether obj is ready, what it
// waits for, and an error when it can never become ready. A caller that
// watches objects itself (the daemon's informers) waits by it as Wait would.
// The rules are kstatus' (sigs.k8s.io/cli-utils), the
// ones kubectl-style tools share: a rollout is complete when the controller
// observed the latest generation and every replica is updated, ready and
// available; a custom resource with a Ready condition waits for it.
// kstatus' Failed (a stalled rollout, a Stalled condition) is an error.
//
// Jobs are arbor's own rule: kstatus counts a started Job as current, but a
// job task waits for it to finish, and a failed Job is ErrJobFailed with the
// Job's reason.
func Ready(obj *unstructured.Unstructured) (bool, string, error) {
	if obj.GroupVersionKind().GroupKind() == (schema.GroupKind{Group: "batch", Kind: "Job"}) {
		return jobReady(obj)
	}
	if err := podsRefused(obj); err != nil {
		return false, "", err
	}
	res, err := status.Compute(obj)
	if err != nil {
		return false, "", fmt.Errorf("%s: status: %w", refString(obj), err)
	}
	switch res.Status {
	case status.CurrentStatus:
		return true, res.Message, nil
	case status.FailedStatus:
		return false, res.Message, fmt.Errorf("%s: %s", refString(obj), failure(res))
	}
	return false, res.Message, nil
}

// failure describes a kstatus Failed result with its condition's reason.
func failure(res *status.Result) string {
	for _, c := range res.Conditions {
		if c.Type == status.ConditionStalled && c.Message != "" {
			return fmt.Sprintf("%s: %s: %s", res.Message, c.Reason, c.Message)
		}
	}
	return res.Message
}

// podsRefused is an error when the API server refuses a workload's pods for
// Pod Security: they stay refused until the template or the namespace's level
// changes, so waiting longer cannot help. Other replica failures (a quota) may
// pass and are left to kstatus.
func podsRefused(obj *unstructured.Unstructured) error {
	c := condition(obj, "ReplicaFailure")
	if c == nil || c["status"] != "True" {
		return nil
	}
	if msg := fmt.Sprint(c["message"]); strings.Contains(msg, "violates PodSecurity") {
		return fmt.Errorf("%s: its pods are refused: %s", refString(obj), msg)
	}
	return nil
}

func jobReady(obj *unstructured.Unstructured) (bool, string, error) {
	if c := condition(obj, "Failed"); c != nil && c["status"] == "True" {
		return false, "", fmt.Errorf("%s: %w: %v: %v", refString(obj), ErrJobFailed, c["reason"], c["message"])
	}
	if c := condition(obj, "Complete"); c != nil && c["status"] == "True" {
		return true, "complete", nil
	}
	return false, fmt.Sprintf("%d pods active, %d succeeded, %d failed",
		nested(obj, "status", "active"), nested(obj, "status", "succeeded"), nested(obj, "status", "failed")), nil
}

func nested(obj *unstructured.Unstructured, path ...string) int64 {
	v, _, _ := unstructured.NestedInt64(obj.Object, path...)
	return v
}

func condition(obj *unstructured.Unstructured, typ string) map[string]any {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			return m
		}
	}
	return nil
}

func refString(obj *unstructured.Unstructured) string { return RefOf(obj).String() }
