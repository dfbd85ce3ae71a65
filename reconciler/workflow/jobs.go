package workflow

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
)

// jobGoneTimeout bounds the wait for a failed Job run to be deleted before it is created again.
const jobGoneTimeout = time.Minute

// runJob creates the task's Job run (its name carries the run hash, so a
// new commit or configuration is a new Job) and waits until it completes or
// fails, within its completed_timeout. A run of the same name that already
// completed is not run again; one that failed is deleted and run again.
func (r *run) runJob(ctx context.Context, task string) error {
	objs, err := r.taskObjects(task)
	if err != nil {
		return err
	}
	timeout := time.Duration(0)
	for _, o := range objs {
		if o.GetKind() != "Job" {
			continue
		}
		if !r.in.Fresh { // a new namespace holds no earlier run to clear
			if err := r.x.clearFailedRun(ctx, r.in.Env.Namespace, o.GetName()); err != nil {
				return err
			}
		}
		timeout = max(timeout, jobTimeout(o))
	}
	if err := r.applyObjects(ctx, objs); err != nil {
		return err
	}
	return r.x.Engine.Wait(ctx, objs, apply.WaitOptions{Namespace: r.in.Env.Namespace, Timeout: timeout})
}

// jobTimeout is how long to wait for a Job: its activeDeadlineSeconds (the
// job's completed_timeout) and a grace for the Job controller to fail it.
func jobTimeout(o *unstructured.Unstructured) time.Duration {
	secs, found, _ := unstructured.NestedInt64(o.Object, "spec", "activeDeadlineSeconds")
	if !found || secs <= 0 {
		secs = 600
	}
	return time.Duration(secs)*time.Second + jobGrace
}

// clearFailedRun deletes the Job named name when it exists, is arbor's and
// has failed, and waits until it is gone, so that applying the run again
// creates a fresh Job.
func (x *Executor) clearFailedRun(ctx context.Context, ns, name string) error {
	if x.Kube == nil {
		return nil
	}
	jobs := x.Kube.BatchV1().Jobs(ns)
	job, err := jobs.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("Job/%s/%s: read: %w", ns, name, err)
	}
	if !jobFailed(job) || job.Labels[render.LabelManagedBy] != render.ManagedByValue {
		return nil
	}
	uid := job.UID
	policy := metav1.DeletePropagationBackground
	err = jobs.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &policy})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("Job/%s/%s: delete the failed run: %w", ns, name, err)
	}
	return x.waitJobGone(ctx, ns, name, uid)
}

func jobFailed(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// waitJobGone watches until the Job with uid no longer exists.
func (x *Executor) waitJobGone(ctx context.Context, ns, name string, uid types.UID) error {
	ctx, cancel := context.WithTimeout(ctx, jobGoneTimeout)
	defer cancel()
	jobs := x.Kube.BatchV1().Jobs(ns)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return jobs.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return jobs.Watch(ctx, o)
		},
	}
	gone := func(store cache.Store) (bool, error) {
		for _, o := range store.List() {
			if j, ok := o.(*batchv1.Job); ok && j.UID == uid {
				return false, nil
			}
		}
		return true, nil
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &batchv1.Job{}, gone, func(ev watch.Event) (bool, error) {
		j, ok := ev.Object.(*batchv1.Job)
		return ok && j.UID == uid && ev.Type == watch.Deleted, nil
	})
	if err != nil {
		return fmt.Errorf("Job/%s/%s: the failed run is not gone: %w", ns, name, err)
	}
	return nil
}
