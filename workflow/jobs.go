package workflow

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/apply"
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

// clearFailedRun has the engine delete the Job named name when it exists,
// is arbor's and has failed, and wait until it is gone, so that applying the
// run again creates a fresh Job.
func (x *Executor) clearFailedRun(ctx context.Context, ns, name string) error {
	ref := apply.ObjectRef{Group: "batch", Kind: "Job", Namespace: ns, Name: name}
	_, err := x.Engine.Recreate(ctx, ref, apply.DeleteOptions{Namespace: ns, Timeout: jobGoneTimeout}, jobFailed)
	if err != nil {
		return fmt.Errorf("clear the failed run: %w", err)
	}
	return nil
}

// jobFailed reports whether a Job has the condition Failed=True.
func jobFailed(job *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(job.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Failed" && m["status"] == "True" {
			return true
		}
	}
	return false
}
