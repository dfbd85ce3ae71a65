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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
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
		ready, msg, err := readiness(u)
		last = msg
		return ready, err
	})
	if err != nil && ctx.Err() != nil {
		return it.errorf("not ready: %s (%w)", last, context.Cause(ctx))
	}
	return err
}

// watchUntil lists the object of it by name and watches it until cond is
// true or fails; cond gets nil when the object does not exist. A watch the
// server ends is resumed with a new list.
func (e *Engine) watchUntil(ctx context.Context, it *item, cond func(*unstructured.Unstructured) (bool, error)) error {
	rc := e.resource(it)
	sel := fields.OneTermEqualSelector("metadata.name", it.ref.Name).String()
	for {
		list, err := rc.List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return it.errorf("list: %w", err)
		}
		var cur *unstructured.Unstructured
		if len(list.Items) > 0 {
			cur = &list.Items[0]
		}
		if done, err := cond(cur); done || err != nil {
			return err
		}
		w, err := rc.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			return it.errorf("watch: %w", err)
		}
		done, err := consume(ctx, w, cond)
		w.Stop()
		if done || err != nil {
			return err
		}
	}
}

// consume feeds watch events to cond until it is done, fails, or the watch
// ends (false, nil: list again).
func consume(ctx context.Context, w watch.Interface, cond func(*unstructured.Unstructured) (bool, error)) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Error {
				return false, nil
			}
			u, isObj := ev.Object.(*unstructured.Unstructured)
			if !isObj {
				continue
			}
			if ev.Type == watch.Deleted {
				u = nil
			}
			if done, err := cond(u); done || err != nil {
				return done, err
			}
		}
	}
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

// readiness says whether obj is ready, what it waits for, and an error when it
// can never become ready (a failed Job, a stalled rollout).
func readiness(obj *unstructured.Unstructured) (bool, string, error) {
	switch obj.GetKind() {
	case "Deployment":
		return deploymentReady(obj)
	case "StatefulSet":
		return statefulSetReady(obj)
	case "DaemonSet":
		return daemonSetReady(obj)
	case "Job":
		return jobReady(obj)
	case "CustomResourceDefinition":
		return conditionReady(obj, "Established", true)
	case "Pod":
		return conditionReady(obj, "Ready", true)
	}
	return conditionReady(obj, "Ready", false)
}

func nested(obj *unstructured.Unstructured, path ...string) int64 {
	v, _, _ := unstructured.NestedInt64(obj.Object, path...)
	return v
}

func specReplicas(obj *unstructured.Unstructured) int64 {
	v, found, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas")
	if !found {
		return 1
	}
	return v
}

func observed(obj *unstructured.Unstructured) (bool, string) {
	if og := nested(obj, "status", "observedGeneration"); og < obj.GetGeneration() {
		return false, fmt.Sprintf("controller has not observed generation %d yet", obj.GetGeneration())
	}
	return true, ""
}

func deploymentReady(obj *unstructured.Unstructured) (bool, string, error) {
	if ok, msg := observed(obj); !ok {
		return false, msg, nil
	}
	if c := condition(obj, "Progressing"); c != nil && c["reason"] == "ProgressDeadlineExceeded" {
		return false, "", fmt.Errorf("%s: rollout stalled: %v", refString(obj), c["message"])
	}
	if c := condition(obj, "ReplicaFailure"); c != nil && c["status"] == "True" {
		// The API server refuses the pods themselves. Pod Security Admission
		// refuses them until the template or the namespace's level changes:
		// waiting longer cannot help. Other failures (a quota) may pass.
		msg := fmt.Sprint(c["message"])
		if strings.Contains(msg, "violates PodSecurity") {
			return false, "", fmt.Errorf("%s: its pods are refused: %s", refString(obj), msg)
		}
		return false, "pods not created: " + msg, nil
	}
	want := specReplicas(obj)
	updated, available, total := nested(obj, "status", "updatedReplicas"), nested(obj, "status", "availableReplicas"), nested(obj, "status", "replicas")
	switch {
	case updated < want:
		return false, fmt.Sprintf("%d of %d replicas updated", updated, want), nil
	case total > updated:
		return false, fmt.Sprintf("%d old replicas pending termination", total-updated), nil
	case available < updated:
		return false, fmt.Sprintf("%d of %d updated replicas available", available, updated), nil
	}
	return true, "rolled out", nil
}

func statefulSetReady(obj *unstructured.Unstructured) (bool, string, error) {
	if ok, msg := observed(obj); !ok {
		return false, msg, nil
	}
	want := specReplicas(obj)
	ready, updated := nested(obj, "status", "readyReplicas"), nested(obj, "status", "updatedReplicas")
	if ready < want {
		return false, fmt.Sprintf("%d of %d replicas ready", ready, want), nil
	}
	if strategy, _, _ := unstructured.NestedString(obj.Object, "spec", "updateStrategy", "type"); strategy == "OnDelete" {
		return true, "ready", nil
	}
	cur, _, _ := unstructured.NestedString(obj.Object, "status", "currentRevision")
	upd, _, _ := unstructured.NestedString(obj.Object, "status", "updateRevision")
	if updated < want || cur != upd {
		return false, fmt.Sprintf("%d of %d replicas updated", updated, want), nil
	}
	return true, "rolled out", nil
}

func daemonSetReady(obj *unstructured.Unstructured) (bool, string, error) {
	if ok, msg := observed(obj); !ok {
		return false, msg, nil
	}
	want := nested(obj, "status", "desiredNumberScheduled")
	updated, available := nested(obj, "status", "updatedNumberScheduled"), nested(obj, "status", "numberAvailable")
	if updated < want || available < want {
		return false, fmt.Sprintf("%d of %d pods updated, %d available", updated, want, available), nil
	}
	return true, "rolled out", nil
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

// conditionReady waits for condition typ to be True. An object without that
// condition is ready unless the condition is required.
func conditionReady(obj *unstructured.Unstructured, typ string, required bool) (bool, string, error) {
	c := condition(obj, typ)
	if c == nil {
		return !required, "no " + typ + " condition yet", nil
	}
	if c["status"] == "True" {
		return true, typ, nil
	}
	return false, fmt.Sprintf("condition %s is %v: %v", typ, c["status"], c["message"]), nil
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
