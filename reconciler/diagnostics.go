package reconciler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/diagnose"
	"github.com/arbordev/arbor/render"
)

// Bounds of the log reads diagnostics makes: how many at once, how many may
// wait, how long one may take, and how many results are kept.
const (
	logFetchWorkers = 2
	logFetchQueue   = 64
	logFetchTimeout = 10 * time.Second
	logRetryAfter   = 30 * time.Second
	maxLogEntries   = 1000
)

// diagnostics watches the pods, claims and Deployments of arbor's environments (those
// labelled with this install and an env, trimmed to what package diagnose
// reads: arbor's services and jobs, and the workloads of its charts and
// kustomize directories) and says, per namespace, why an environment is not ready.
// The last log lines of a container are read once, when a problem that
// wants them is first seen, and kept until its pod goes.
type diagnostics struct {
	log     *slog.Logger
	cs      kubernetes.Interface
	factory informers.SharedInformerFactory
	pods    toolscache.SharedIndexInformer
	pvcs    toolscache.SharedIndexInformer
	deploys toolscache.SharedIndexInformer // for pods refused before they exist
	now     func() time.Time
	// changed is told of a namespace whose problems may have changed.
	changed func(namespace string)

	fetch chan logRequest
	mu    sync.Mutex
	logs  map[string]logEntry // by Problem.LogKey
}

type logRequest struct {
	key, namespace, pod, container string
	previous                       bool
}

type logEntry struct {
	lines    []string
	err      error
	at       time.Time
	inFlight bool
}

func newDiagnostics(cs kubernetes.Interface, install string, log *slog.Logger, changed func(string)) (*diagnostics, error) {
	sel, err := diagnosticsSelector(install)
	if err != nil {
		return nil, err
	}
	d := &diagnostics{log: log, cs: cs, now: time.Now, changed: changed, fetch: make(chan logRequest, logFetchQueue), logs: map[string]logEntry{}}
	d.factory = informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = sel
	}))
	d.pods = d.factory.Core().V1().Pods().Informer()
	d.pvcs = d.factory.Core().V1().PersistentVolumeClaims().Informer()
	d.deploys = d.factory.Apps().V1().Deployments().Informer()
	if err := d.pods.SetTransform(diagnose.SlimPod); err != nil {
		return nil, err
	}
	if err := d.pvcs.SetTransform(diagnose.SlimPVC); err != nil {
		return nil, err
	}
	if err := d.deploys.SetTransform(diagnose.SlimDeployment); err != nil {
		return nil, err
	}
	for _, inf := range []toolscache.SharedIndexInformer{d.pods, d.pvcs, d.deploys} {
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    d.seen,
			UpdateFunc: func(_, cur any) { d.seen(cur) },
			DeleteFunc: d.gone,
		}); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// diagnosticsSelector selects what the watches hold: objects of this
// install (every install has its label; without one, arbor's managed-by)
// that carry the env label. Pods of a chart's or kustomize directory's
// workloads carry these two (labelPodTemplates), not managed-by, which a
// chart may set to its own value.
func diagnosticsSelector(install string) (string, error) {
	key, value := render.LabelManagedBy, render.ManagedByValue
	if install != "" {
		key, value = apply.LabelInstall, install
	}
	own, err := labels.NewRequirement(key, selection.Equals, []string{value})
	if err != nil {
		return "", fmt.Errorf("diagnostics' selector: %w", err)
	}
	env, err := labels.NewRequirement(render.LabelEnv, selection.Exists, nil)
	if err != nil {
		return "", fmt.Errorf("diagnostics' selector: %w", err)
	}
	return labels.NewSelector().Add(*own, *env).String(), nil
}

// start runs the informers and the log readers; it does not wait for the
// first listing (status reads what is there).
func (d *diagnostics) start(ctx context.Context) {
	d.factory.Start(ctx.Done())
	for range logFetchWorkers {
		go d.readLogs(ctx)
	}
}

// seen asks for the logs a changed pod's problems want, and reports its namespace.
func (d *diagnostics) seen(obj any) {
	if p, ok := obj.(*corev1.Pod); ok {
		for _, pr := range diagnose.Pod(p, d.now()) {
			d.want(p.Namespace, pr)
		}
	}
	if m, err := metaOf(obj); err == nil && d.changed != nil {
		d.changed(m.GetNamespace())
	}
}

// gone forgets the logs of a deleted pod (or of whatever had its name).
func (d *diagnostics) gone(obj any) {
	m, err := metaOf(obj)
	if err != nil {
		return
	}
	prefix := m.GetNamespace() + "/" + m.GetName() + "/"
	d.mu.Lock()
	for k := range d.logs {
		if strings.HasPrefix(k, prefix) {
			delete(d.logs, k)
		}
	}
	d.mu.Unlock()
	if d.changed != nil {
		d.changed(m.GetNamespace())
	}
}

// want queues the read of a problem's log unless it is read, being read,
// or failed less than logRetryAfter ago; a full queue drops the request
// (the next change of the pod, or the next status read, asks again).
func (d *diagnostics) want(ns string, pr diagnose.Problem) {
	if !pr.WantLogs || pr.Container == "" {
		return
	}
	key := pr.LogKey(ns)
	d.mu.Lock()
	e, ok := d.logs[key]
	if ok && (e.inFlight || e.err == nil || d.now().Sub(e.at) < logRetryAfter) {
		d.mu.Unlock()
		return
	}
	if !ok && len(d.logs) >= maxLogEntries {
		d.evictOldest()
	}
	d.logs[key] = logEntry{inFlight: true, at: d.now()}
	d.mu.Unlock()
	select {
	case d.fetch <- logRequest{key: key, namespace: ns, pod: pr.Pod, container: pr.Container, previous: pr.PreviousLogs}:
	default:
		d.mu.Lock()
		delete(d.logs, key)
		d.mu.Unlock()
	}
}

// evictOldest drops the oldest finished entry; d.mu is held.
func (d *diagnostics) evictOldest() {
	var oldest string
	var at time.Time
	for k, e := range d.logs {
		if !e.inFlight && (oldest == "" || e.at.Before(at)) {
			oldest, at = k, e.at
		}
	}
	if oldest != "" {
		delete(d.logs, oldest)
	}
}

func (d *diagnostics) readLogs(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-d.fetch:
			lines, err := d.readLog(ctx, req)
			d.mu.Lock()
			if _, still := d.logs[req.key]; still {
				d.logs[req.key] = logEntry{lines: lines, err: err, at: d.now()}
			}
			d.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				d.log.Info("could not read a failed container's log", "namespace", req.namespace, "pod", req.pod,
					"container", req.container, "error", err)
			}
			if d.changed != nil {
				d.changed(req.namespace)
			}
		}
	}
}

// readLog reads the tail of one container's log: the API server's log
// endpoint of that pod and container only, bounded in lines, bytes and time.
func (d *diagnostics) readLog(ctx context.Context, req logRequest) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, logFetchTimeout)
	defer cancel()
	tail, limit := int64(diagnose.MaxLogLines), int64(2*diagnose.MaxLogBytes)
	rc, err := d.cs.CoreV1().Pods(req.namespace).GetLogs(req.pod, &corev1.PodLogOptions{
		Container: req.container, Previous: req.previous, TailLines: &tail, LimitBytes: &limit,
	}).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("logs of %s/%s container %s: %w", req.namespace, req.pod, req.container, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		return nil, fmt.Errorf("logs of %s/%s container %s: %w", req.namespace, req.pod, req.container, err)
	}
	return diagnose.LogLines(b), nil
}

// problems diagnoses namespace ns from the watches, with the log lines
// read so far; logs still wanted are asked for.
func (d *diagnostics) problems(ns string) []diagnose.Problem {
	if d == nil || ns == "" {
		return nil
	}
	var pods []*corev1.Pod
	if objs, err := d.pods.GetIndexer().ByIndex(toolscache.NamespaceIndex, ns); err == nil {
		for _, o := range objs {
			if p, ok := o.(*corev1.Pod); ok {
				pods = append(pods, p)
			}
		}
	}
	var pvcs []*corev1.PersistentVolumeClaim
	if objs, err := d.pvcs.GetIndexer().ByIndex(toolscache.NamespaceIndex, ns); err == nil {
		for _, o := range objs {
			if c, ok := o.(*corev1.PersistentVolumeClaim); ok {
				pvcs = append(pvcs, c)
			}
		}
	}
	var deploys []*appsv1.Deployment
	if objs, err := d.deploys.GetIndexer().ByIndex(toolscache.NamespaceIndex, ns); err == nil {
		for _, o := range objs {
			if dp, ok := o.(*appsv1.Deployment); ok {
				deploys = append(deploys, dp)
			}
		}
	}
	ps := diagnose.Environment(pods, pvcs, deploys, d.now())
	for i := range ps {
		if !ps[i].WantLogs {
			continue
		}
		d.mu.Lock()
		e, ok := d.logs[ps[i].LogKey(ns)]
		d.mu.Unlock()
		if ok && e.lines != nil {
			ps[i].Logs = e.lines
			continue
		}
		d.want(ns, ps[i])
	}
	return ps
}

// problemsOf is the diagnosis of an environment in status: none while it
// is being deleted or expired (its pods are going on purpose).
func (r *Reconciler) problemsOf(st *envState) []diagnose.Problem {
	switch st.Phase {
	case PhaseDeleting, PhaseExpired:
		return nil
	case PhaseWaiting:
		if waitingForSlot(st) {
			return r.waitingProblem(st)
		}
	}
	return r.diag.problems(st.Namespace)
}

// problemsChanged is the watches' callback: something in namespace ns
// changed. When the environment's summary changed, its forge report is due.
func (r *Reconciler) problemsChanged(ns string) {
	if !r.leading.Load() {
		return
	}
	rec := r.cache.envOfNamespace(ns)
	if rec == nil || r.apps[rec.App] == nil || r.apps[rec.App].forge == nil {
		r.reportedMu.Lock()
		delete(r.reported, ns) // the environment is gone: nothing to report
		r.reportedMu.Unlock()
		return
	}
	sum := diagnose.Summary(r.diag.problems(ns), reportProblems)
	r.reportedMu.Lock()
	same := r.reported[ns] == sum
	if sum == "" {
		delete(r.reported, ns)
	} else {
		r.reported[ns] = sum
	}
	r.reportedMu.Unlock()
	if !same {
		r.statusChanged(envKey{App: rec.App, Branch: rec.Branch})
	}
}

// reportProblems is how many problems a commit status or comment names.
const reportProblems = 2

// problemSummary is the short diagnosis the forge shows, "" when none.
func (r *Reconciler) problemSummary(st *envState) string {
	return diagnose.Summary(r.problemsOf(st), reportProblems)
}
