package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/workflow"
)

// The API's actions on one environment besides deploy (RequestDeploy):
// extend, delete and logs. Like a deploy request, extend and delete are
// recorded on the environment's namespace, so any replica takes them and
// the leader acts; logs are read from the cluster by the replica asked.

// Errors of the actions, for the server's status codes.
var (
	// ErrNeverExpires: an extension of an environment that never expires.
	ErrNeverExpires = errors.New("the environment never expires")
	// ErrTooLong: an extension beyond the app's max_extension.
	ErrTooLong = errors.New("longer than the app allows")
	// ErrNoLogs: nothing to show (no such service or job, no pods, no run).
	ErrNoLogs = errors.New("no logs")
	// ErrNotAdopted: an environment without this install's label, which
	// arbor deletes only once it adopted it (docs/operations.md).
	ErrNotAdopted = errors.New("not adopted by this install yet")
)

// live returns the environment and its namespace's record in the cache, or
// an error wrapping ErrNoEnvironment.
func (r *Reconciler) live(app, env string) (EnvironmentStatus, *envRecord, error) {
	if _, ok := r.apps[app]; ok {
		for _, rec := range r.cache.envs(app) {
			if (rec.EnvID == env || rec.Branch == env) && !rec.Deleting {
				st, _ := r.Environment(app, rec.Branch)
				return st, rec, nil
			}
		}
	}
	return EnvironmentStatus{}, nil, fmt.Errorf("app %s has no environment %s: %w", app, env, ErrNoEnvironment)
}

// ExtendResponse is the body of a successful extension.
type ExtendResponse struct {
	App       string    `json:"app"`
	Env       string    `json:"env"`
	Namespace string    `json:"namespace"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Changed is false when the environment already expired later.
	Changed bool   `json:"changed"`
	Message string `json:"message"`
}

// Extend records that app's environment env expires by from now, not
// earlier: the leader sees it on the namespace and keeps the environment
// until then (a later push moves the expiry later still). It refuses an
// environment that never expires (ErrNeverExpires) and an extension longer
// than the app's max_extension (ErrTooLong).
func (r *Reconciler) Extend(ctx context.Context, app, env string, by time.Duration) (ExtendResponse, error) {
	st, rec, err := r.live(app, env)
	if err != nil {
		return ExtendResponse{}, err
	}
	if st.ExpiresAfter == "" {
		return ExtendResponse{}, fmt.Errorf("%s/%s: %w (its environment template has no expires_after)", app, env, ErrNeverExpires)
	}
	if rec.Keep {
		return ExtendResponse{}, fmt.Errorf("%s/%s: %w (its namespace is annotated %s: \"true\")", app, env, ErrNeverExpires, render.AnnotationKeep)
	}
	if max := r.apps[app].cfg.MaxExtension.Duration; max > 0 && by > max {
		return ExtendResponse{}, fmt.Errorf("%s/%s: %s is %w (max_extension %s)", app, env, by, ErrTooLong, max)
	}
	at := time.Now().Add(by).UTC().Truncate(time.Second)
	resp := ExtendResponse{App: app, Env: env, Namespace: rec.Namespace, ExpiresAt: at, Changed: true}
	if cur := st.ExpiresAt; !cur.IsZero() && !at.After(cur) {
		resp.ExpiresAt, resp.Changed = cur, false
		resp.Message = "already expires at " + cur.UTC().Format(time.RFC3339) + ", later than asked: unchanged"
		return resp, nil
	}
	if err := workflow.RequestExtend(ctx, r.opts.Kube, rec.Namespace, r.opts.Config.Install, at); err != nil {
		return ExtendResponse{}, err
	}
	resp.Message = "expires at " + at.Format(time.RFC3339) + " (or later, after a push)"
	return resp, nil
}

// DeleteResponse is the body of a successful delete request.
type DeleteResponse struct {
	App       string `json:"app"`
	Env       string `json:"env"`
	Namespace string `json:"namespace"`
	Requested string `json:"requested"`
	Message   string `json:"message"`
}

// Delete records a delete request for app's environment env (by names who
// asked): the leader runs its teardown and deletes it as it would for a
// branch that is gone, and the branch gets no environment again until its
// next push (see deleted.go).
func (r *Reconciler) Delete(ctx context.Context, app, env, by string) (DeleteResponse, error) {
	_, rec, err := r.live(app, env)
	if err != nil {
		return DeleteResponse{}, err
	}
	if rec.Legacy {
		return DeleteResponse{}, fmt.Errorf("%s/%s: namespace %s has no install label: %w", app, env, rec.Namespace, ErrNotAdopted)
	}
	v, err := workflow.RequestDelete(ctx, r.opts.Kube, rec.Namespace, r.opts.Config.Install, by, time.Now())
	if err != nil {
		return DeleteResponse{}, err
	}
	return DeleteResponse{App: app, Env: env, Namespace: rec.Namespace, Requested: v,
		Message: "deleting; the branch's next push creates the environment again"}, nil
}

// LogRequest is what a logs request asks for (server.LogQuery).
type LogRequest struct {
	Kind       string // service, job, workflow or build
	Name       string // the service or job
	Container  string
	Tail       int64
	LimitBytes int64
	Follow     bool
}

// maxLogPods bounds how many pods one request reads logs from.
const maxLogPods = 10

// Logs writes the logs of app's environment env that q asks for to w.
func (r *Reconciler) Logs(ctx context.Context, app, env string, q LogRequest, w io.Writer) error {
	st, rec, err := r.live(app, env)
	if err != nil {
		return err
	}
	switch q.Kind {
	case "service", "job":
		return r.podLogs(ctx, rec.Namespace, q, w)
	case "workflow":
		return workflowLog(st, w)
	case "build":
		return buildLog(st, w)
	}
	return fmt.Errorf("logs of %q: %w", q.Kind, ErrNoLogs)
}

// podLogs copies the logs of a service's or job's pods, newest pod first
// (followed: the newest pod only), each container under a header line when
// there are several streams.
func (r *Reconciler) podLogs(ctx context.Context, ns string, q LogRequest, w io.Writer) error {
	label := render.LabelService
	if q.Kind == "job" {
		label = render.LabelJob
	}
	sel, err := labels.ValidatedSelectorFromSet(labels.Set{label: q.Name})
	if err != nil {
		return fmt.Errorf("%s %q: %w", q.Kind, q.Name, ErrNoLogs)
	}
	pods, err := r.opts.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String(), Limit: 100})
	if err != nil {
		return fmt.Errorf("list the pods of %s %s: %w", q.Kind, q.Name, err)
	}
	items := pods.Items
	if len(items) == 0 {
		return fmt.Errorf("%s %q has no pods in namespace %s: %w", q.Kind, q.Name, ns, ErrNoLogs)
	}
	sort.Slice(items, func(i, j int) bool { return items[j].CreationTimestamp.Before(&items[i].CreationTimestamp) })
	n := min(len(items), maxLogPods)
	if q.Follow {
		n = 1
	}
	type stream struct{ pod, container string }
	var streams []stream
	for _, p := range items[:n] {
		for _, c := range p.Spec.Containers {
			if q.Container == "" || q.Container == c.Name {
				streams = append(streams, stream{p.Name, c.Name})
			}
		}
	}
	if len(streams) == 0 {
		return fmt.Errorf("%s %q has no container %q: %w", q.Kind, q.Name, q.Container, ErrNoLogs)
	}
	for _, s := range streams {
		if len(streams) > 1 {
			if _, err := fmt.Fprintf(w, "==> pod/%s container %s <==\n", s.pod, s.container); err != nil {
				return err
			}
		}
		if err := r.copyLog(ctx, ns, s.pod, s.container, q, w); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) copyLog(ctx context.Context, ns, pod, container string, q LogRequest, w io.Writer) error {
	opts := &corev1.PodLogOptions{Container: container, Follow: q.Follow}
	if q.Tail > 0 {
		opts.TailLines = &q.Tail
	}
	if q.LimitBytes > 0 {
		opts.LimitBytes = &q.LimitBytes
	}
	rc, err := r.opts.Kube.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(ctx)
	if err != nil {
		return fmt.Errorf("logs of pod %s/%s container %s: %w", ns, pod, container, err)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	if err != nil && ctx.Err() != nil {
		return nil // the client went, or a followed stream reached its bound
	}
	return err
}

// workflowLog writes the last workflow run as the executor recorded it:
// the stage, its outcome, and each task with its state and reason.
// buildLog writes the environment's last image job: per built service, the
// image and its build log (a failure's failing step and last lines; a
// success's steps, on the leader that built it).
func buildLog(st EnvironmentStatus, w io.Writer) error {
	if len(st.Images) == 0 {
		return fmt.Errorf("%s/%s: %w: no image of a built service has been built or waited for (docs/images.md)", st.App, st.Branch, ErrNoLogs)
	}
	var b strings.Builder
	for _, im := range st.Images {
		switch {
		case im.Error != "":
			fmt.Fprintf(&b, "==> services.%s: %s: failed: %s\n", im.Service, im.Image, im.Error)
			if im.Step != "" {
				fmt.Fprintf(&b, "step %s\n", im.Step)
			}
		case im.Built:
			fmt.Fprintf(&b, "==> services.%s: built %s\n", im.Service, im.Pinned)
		default:
			fmt.Fprintf(&b, "==> services.%s: found %s (nothing built)\n", im.Service, im.Pinned)
		}
		for _, ln := range im.Log {
			b.WriteString(ln + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func workflowLog(st EnvironmentStatus, w io.Writer) error {
	p := st.Workflow
	if p == nil {
		return fmt.Errorf("%s/%s: %w: no workflow has run", st.App, st.Branch, ErrNoLogs)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", stamp(p.Started), p.Stage, p.Outcome)
	if !p.Finished.IsZero() {
		fmt.Fprintf(&b, " (finished %s)", stamp(p.Finished))
	}
	b.WriteString("\n")
	for _, t := range p.Tasks {
		name := t.Name
		if t.App != "" {
			name = t.App + ":" + name
		}
		fmt.Fprintf(&b, "%s step %s: %s %s", stamp(t.Started), t.Step, name, t.State)
		if !t.Finished.IsZero() && !t.Started.IsZero() {
			fmt.Fprintf(&b, " in %s", t.Finished.Sub(t.Started).Round(time.Millisecond))
		}
		if t.Reason != "" {
			fmt.Fprintf(&b, ": %s", t.Reason)
		}
		b.WriteString("\n")
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", warn)
	}
	if p.Error != "" {
		fmt.Fprintf(&b, "error: %s\n", p.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
