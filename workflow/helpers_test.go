package workflow

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// harness is one test's executor on the real cluster and a fresh app name
// (so a fresh environment namespace), deleted when the test ends.
type harness struct {
	t    testing.TB
	app  string
	kube kubernetes.Interface
	eng  *apply.Engine
	x    *Executor
}

func newHarness(t *testing.T) *harness { return newBenchHarness(t) }

// newBenchHarness is newHarness for tests and benchmarks.
func newBenchHarness(t testing.TB) *harness {
	t.Helper()
	cfg := testcluster.Config(t)
	eng, err := apply.New(cfg, apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, app: testcluster.Name("wf"), kube: kube, eng: eng}
	h.x = &Executor{Engine: eng, RolloutTimeout: 2 * time.Minute}
	return h
}

// cleanup deletes ns when the test ends.
func (h *harness) cleanup(ns string) {
	h.t.Cleanup(func() {
		err := h.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			h.t.Logf("delete namespace %s: %v", ns, err)
		}
	})
}

// load loads an inline .release.yaml, failing on any error finding.
func load(t testing.TB, tmpl string) *schema.Config {
	t.Helper()
	fsys := fstest.MapFS{schema.DefaultConfigFile: {Data: []byte(tmpl)}}
	cfg, findings, err := schema.Load(fsys, schema.DefaultConfigFile, schema.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if findings.HasErrors() {
		t.Fatalf("invalid template: %v", findings.Errors())
	}
	return cfg
}

// render renders the app's environment of branch at commit.
func (h *harness) render(branch, commit, tmpl string, imports ...render.Import) *render.Environment {
	return h.renderB(h.t, branch, commit, tmpl, imports...)
}

func (h *harness) renderB(tb testing.TB, branch, commit, tmpl string, imports ...render.Import) *render.Environment {
	h.t.Helper()
	env, err := render.Render(render.Input{
		Config:  load(tb, tmpl),
		Context: render.Context{App: h.app, Branch: branch, Commit: commit, Domain: "test.local", DefaultBranch: "main"},
		Imports: imports,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.cleanup(env.Namespace)
	return env
}

// event is one watch event, with the facts the tests order by.
type event struct {
	Kind, Name string
	Type       watch.EventType
	RV         int64 // the etcd revision: one global order across kinds
	Ready      bool  // Deployment available and updated, or Job complete
	Failed     bool  // Job failed
	Deleting   bool  // deletionTimestamp set
	Commit     string
}

// recorder watches an environment namespace's Deployments, Jobs,
// ConfigMaps and Ingresses, and the namespace itself, from before a run.
type recorder struct {
	mu     sync.Mutex
	events []event
	stop   []func()
}

func (h *harness) record(ns string) *recorder {
	h.t.Helper()
	ctx := context.Background()
	r := &recorder{}
	byName := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", ns).String()}
	watches := []func() (watch.Interface, error){
		func() (watch.Interface, error) {
			return h.kube.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{})
		},
		func() (watch.Interface, error) { return h.kube.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{}) },
		func() (watch.Interface, error) {
			return h.kube.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
		},
		func() (watch.Interface, error) {
			return h.kube.NetworkingV1().Ingresses(ns).Watch(ctx, metav1.ListOptions{})
		},
		func() (watch.Interface, error) { return h.kube.CoreV1().Namespaces().Watch(ctx, byName) },
	}
	var wg sync.WaitGroup
	for _, open := range watches {
		w, err := open()
		if err != nil {
			h.t.Fatal(err)
		}
		r.stop = append(r.stop, w.Stop)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range w.ResultChan() {
				if e, ok := toEvent(ev); ok {
					r.mu.Lock()
					r.events = append(r.events, e)
					r.mu.Unlock()
				}
			}
		}()
	}
	h.t.Cleanup(func() {
		for _, s := range r.stop {
			s()
		}
		wg.Wait()
	})
	return r
}

func toEvent(ev watch.Event) (event, bool) {
	o, ok := ev.Object.(metav1.Object)
	if !ok {
		return event{}, false
	}
	rv, _ := strconv.ParseInt(o.GetResourceVersion(), 10, 64)
	e := event{Name: o.GetName(), Type: ev.Type, RV: rv, Deleting: o.GetDeletionTimestamp() != nil, Commit: o.GetAnnotations()[render.AnnotationCommit]}
	switch x := ev.Object.(type) {
	case *appsv1.Deployment:
		e.Kind = "Deployment"
		want := int32(1)
		if x.Spec.Replicas != nil {
			want = *x.Spec.Replicas
		}
		e.Ready = x.Status.ObservedGeneration >= x.Generation && x.Status.UpdatedReplicas >= want && x.Status.AvailableReplicas >= want
	case *batchv1.Job:
		e.Kind = "Job"
		for _, c := range x.Status.Conditions {
			if c.Status == corev1.ConditionTrue {
				e.Ready = e.Ready || c.Type == batchv1.JobComplete
				e.Failed = e.Failed || c.Type == batchv1.JobFailed
			}
		}
	case *corev1.ConfigMap:
		e.Kind = "ConfigMap"
	case *corev1.Namespace:
		e.Kind = "Namespace"
	case *networkingv1.Ingress:
		e.Kind = "Ingress"
	default:
		return event{}, false
	}
	return e, true
}

// first returns the revision of the first event of kind whose name starts
// with prefix and that matches pred, or fails the test.
func (r *recorder) first(t *testing.T, kind, prefix string, pred func(event) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second) // watch events trail the run a little
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if e.Kind == kind && strings.HasPrefix(e.Name, prefix) && (pred == nil || pred(e)) {
				r.mu.Unlock()
				return e.RV
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no watch event for %s %s* matching the condition", kind, prefix)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func added(e event) bool { return e.Type == watch.Added }
func ready(e event) bool { return e.Ready }

// before fails the test unless revision a < b.
func before(t *testing.T, what string, a, b int64) {
	t.Helper()
	if a >= b {
		t.Errorf("%s: revision %d is not before %d", what, a, b)
	}
}
