package reconciler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/arbordev/arbor/apply"
)

// storeInformer is a SharedIndexInformer whose store the test fills: the
// rollout wait reads only the store.
type storeInformer struct {
	toolscache.SharedIndexInformer
	store toolscache.Store
}

func (s storeInformer) GetStore() toolscache.Store { return s.store }

func deployment(uid types.UID, generation, observed int64, available int32) *appsv1.Deployment {
	one := int32(1)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "env", Name: "web", UID: uid, Generation: generation}}
	d.Spec.Replicas = &one
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: available, UpdatedReplicas: available, ReadyReplicas: available, AvailableReplicas: available}
	if available == 1 {
		d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: "True"}, {Type: appsv1.DeploymentProgressing, Status: "True", Reason: "NewReplicaSetAvailable"}}
	}
	return d
}

// A rollout is never read from an older version of the Deployment than the
// one Apply wrote, nor from another object of the same name: the wait goes
// on (here until its deadline) while the watch shows only those, and ends
// as soon as it shows the written version rolled out.
func TestRolloutWaitNeedsTheWrittenVersion(t *testing.T) {
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	c := &cachedRollouts{deploys: storeInformer{store: store}, expect: map[string]written{}, waiters: map[string]map[chan struct{}]bool{}}
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("apps/v1")
	obj.SetKind("Deployment")
	obj.SetNamespace("env")
	obj.SetName("web")
	want := written{uid: "new", generation: 2}
	wait := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return c.waitRollout(ctx, obj, "env/web", want, apply.WaitOptions{Namespace: "env"})
	}
	for name, stale := range map[string]*appsv1.Deployment{
		"the version before the write, rolled out": deployment("new", 1, 1, 1),
		"a deleted object of the same name":        deployment("old", 5, 5, 1),
	} {
		_ = store.Add(stale)
		if err := wait(300 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not ready") {
			t.Errorf("watch shows %s: wait returned %v, want it not ready at its deadline", name, err)
		}
		_ = store.Delete(stale)
	}
	_ = store.Add(deployment("new", 2, 2, 0))
	if err := wait(300 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("written version not rolled out yet: wait returned %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- wait(10 * time.Second) }()
	time.Sleep(100 * time.Millisecond)
	_ = store.Update(deployment("new", 2, 2, 1))
	c.wake("env/web", false)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("written version rolled out: wait returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the wait did not end when the watch showed the written version rolled out")
	}
}
