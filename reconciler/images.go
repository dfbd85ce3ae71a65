package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/images"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/workflow"
)

// PhaseWaiting: the environment waits, its message says for what: its
// images, built or waited for in the registry (what runs keeps running until
// they are there), or a slot under its app's max_environments (guards.go).
const PhaseWaiting = "Waiting"

// ImageStatus is one built service's image in the status API: the image it
// runs (pinned by digest), or why there is none.
type ImageStatus struct {
	App     string `json:"app"`
	Service string `json:"service"`
	// Image is the reference the template gives (the tag CI pushes in
	// external mode); Pinned what runs.
	Image  string `json:"image"`
	Pinned string `json:"pinned,omitempty"`
	// Tag is where the image is stored: the content-keyed tag arbor built
	// (registry/app/service:arbor-KEY), or the reference waited for.
	Tag string `json:"tag,omitempty"`
	// Built is true when arbor built it for this commit (false: found in
	// the registry, built before or by CI).
	Built bool `json:"built,omitempty"`
	// Error is why there is no image; Step names the failing build step.
	Error string `json:"error,omitempty"`
	Step  string `json:"step,omitempty"`
	// Log is the build's log: a failed build's failing step's last lines,
	// or a finished build's steps each with its last lines. The record in
	// the cluster keeps only a failure's (recordedImages).
	Log []string `json:"log,omitempty"`
}

// recordedImages is what an environment's record keeps of its images: the
// build logs of successes are left to the leader's memory, so that the
// record stays small.
func recordedImages(ims []ImageStatus) []ImageStatus {
	if len(ims) == 0 {
		return nil
	}
	out := make([]ImageStatus, len(ims))
	for i, im := range ims {
		if im.Error == "" {
			im.Log = nil
		}
		out[i] = im
	}
	return out
}

// imagesPending is build's answer while an environment's images are not
// all there yet: the environment waits, nothing is applied.
type imagesPending struct{ message string }

func (e *imagesPending) Error() string { return e.message }

// imageFailure is build's answer when an image could not be had: a failed
// build or a wait that reached its deadline. It is not retried with backoff
// (the inputs did not change): the next push or a deploy request tries again.
type imageFailure struct {
	err    error
	report []ImageStatus
}

func (e *imageFailure) Error() string { return e.err.Error() }
func (e *imageFailure) Unwrap() error { return e.err }

// imageBuilder and imageWaiter are what the image source uses of package
// images.
type imageBuilder interface {
	Build(ctx context.Context, req images.Request) (images.Result, error)
}

type imageWaiter interface {
	Wait(ctx context.Context, ref string) (images.Result, error)
}

// imageSource gets the images of environments' built services — built with
// BuildKit or waited for in the registry — off the reconcile path: a
// reconcile asks (resolve) and never blocks on a build or a wait; the
// answer queues the environment again.
type imageSource struct {
	mode    string
	builder imageBuilder
	waiter  imageWaiter
	log     *slog.Logger
	metrics *Metrics
	done    func(envKey)

	mu   sync.Mutex
	base context.Context // the leader's lifetime: jobs end with it
	jobs map[envKey]*imageJob
}

// imageJob is one environment's images for one set of inputs.
type imageJob struct {
	id      string
	cancel  context.CancelFunc
	done    bool
	retried string // the deploy request a failed job was retried for
	pinned  map[string]string
	report  []ImageStatus
	err     error
	pending map[string]bool // images not there yet, by reference
}

// imageInput is one build with where its sources come from.
type imageInput struct {
	build  render.ImageBuild
	src    Source
	tree   fs.FS
	commit string
}

func newImageSource(mode string, b imageBuilder, w imageWaiter, log *slog.Logger, m *Metrics) *imageSource {
	return &imageSource{mode: mode, builder: b, waiter: w, log: log, metrics: m, jobs: map[envKey]*imageJob{}}
}

// start sets the context the jobs run under (the leader's) and what is
// called when an environment's job ends. The jobs of an earlier term, ended
// with its context, are dropped: this term asks again.
func (s *imageSource) start(ctx context.Context, done func(envKey)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, j := range s.jobs {
		j.cancel()
		delete(s.jobs, k)
	}
	s.base, s.done = ctx, done
}

// resolve returns the pins of key's images (ImageBuild.Image → pinned
// reference) once all are there; meanwhile an *imagesPending, and an
// *imageFailure when one cannot be had. A failed job is tried again only for
// a new deploy request (request, the pending request's value).
func (s *imageSource) resolve(key envKey, inputs []imageInput, request string) (map[string]string, error) {
	id := inputsID(inputs)
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[key]
	switch {
	case j == nil || j.id != id:
		if j != nil {
			j.cancel()
		}
		j = s.run(key, id, inputs, "")
	case j.done && j.err != nil && request != "" && request != j.retried:
		j = s.run(key, id, inputs, request)
	}
	if !j.done {
		return nil, &imagesPending{message: j.waitingFor(s.mode)}
	}
	if j.err != nil {
		return nil, &imageFailure{err: j.err, report: j.report}
	}
	return j.pinned, nil
}

// report is the last job's image report of key, for the status API.
func (s *imageSource) report(key envKey) []ImageStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[key]; j != nil && j.done {
		return j.report
	}
	return nil
}

// forget cancels key's job and drops it: the environment is gone.
func (s *imageSource) forget(key envKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[key]; j != nil {
		j.cancel()
		delete(s.jobs, key)
	}
}

// run starts a job; s.mu is held.
func (s *imageSource) run(key envKey, id string, inputs []imageInput, retried string) *imageJob {
	base := s.base
	if base == nil {
		base = context.Background()
	}
	ctx, cancel := context.WithCancel(base)
	j := &imageJob{id: id, cancel: cancel, retried: retried, pending: map[string]bool{}}
	for _, in := range inputs {
		j.pending[in.build.Image] = true
	}
	s.jobs[key] = j
	go s.work(ctx, key, j, inputs)
	return j
}

// work gets every image of a job, at most four lookups or builds at once
// (the builder bounds the builds themselves), and records the outcome.
func (s *imageSource) work(ctx context.Context, key envKey, j *imageJob, inputs []imageInput) {
	report := make([]ImageStatus, len(inputs))
	var g errgroup.Group
	g.SetLimit(4)
	for i, in := range inputs {
		g.Go(func() error {
			report[i] = s.one(ctx, key, in)
			s.mu.Lock()
			delete(j.pending, in.build.Image)
			s.mu.Unlock()
			if report[i].Error != "" {
				return errors.New(report[i].Error)
			}
			return nil
		})
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return // cancelled: a newer job or a lost lease; nobody reads this one
	}
	pinned := map[string]string{}
	for _, r := range report {
		if r.Pinned != "" {
			pinned[r.Image] = r.Pinned
		}
	}
	s.mu.Lock()
	j.done, j.pinned, j.report = true, pinned, report
	if err != nil {
		j.err = firstImageError(report)
	}
	done := s.done
	current := s.jobs[key] == j
	s.mu.Unlock()
	if current && done != nil {
		done(key)
	}
}

// one gets one image: built, or waited for.
func (s *imageSource) one(ctx context.Context, key envKey, in imageInput) ImageStatus {
	st := ImageStatus{App: in.build.App, Service: in.build.Service, Image: in.build.Image}
	start := time.Now()
	var res images.Result
	var err error
	if s.mode == config.ImagesBuildKit {
		res, err = s.build(ctx, in)
	} else {
		res, err = s.waiter.Wait(ctx, in.build.Image)
	}
	result := s.observe(key, start, res, err)
	switch {
	case err == nil:
		st.Pinned, st.Tag, st.Built, st.Log = res.Ref, res.Tag, res.Built, res.Log
	default:
		st.Error = err.Error()
		var be *images.BuildError
		if errors.As(err, &be) {
			st.Step, st.Log = be.Step, be.Log
		}
		if ctx.Err() == nil {
			s.log.Warn("no image for a service; the environment keeps what runs", "app", key.App, "branch", key.Branch,
				"service", in.build.Service, "result", result, "error", err)
		}
	}
	return st
}

// Results of arbor_images_total.
const (
	imageBuilt   = "built"
	imageFound   = "found"
	imageFailed  = "failed"
	imageTimeout = "timeout"
)

// observe counts one image's outcome and its time, and names the outcome.
func (s *imageSource) observe(key envKey, start time.Time, res images.Result, err error) string {
	result := imageFound
	var te *images.WaitTimeoutError
	switch {
	case errors.As(err, &te):
		result = imageTimeout
	case err != nil:
		result = imageFailed
	case res.Built:
		result = imageBuilt
	}
	if s.metrics != nil && (err == nil || !errors.Is(err, context.Canceled)) {
		s.metrics.images.WithLabelValues(key.App, s.mode, result).Inc()
		if err == nil {
			s.metrics.imageSeconds.WithLabelValues(key.App, s.mode).Observe(time.Since(start).Seconds())
		}
	}
	return result
}

// build sends one service's build to BuildKit, from the commit's tree.
func (s *imageSource) build(ctx context.Context, in imageInput) (images.Result, error) {
	b := in.build
	ctxKey, err := in.src.TreeHash(ctx, in.commit, b.Build.Context)
	if err != nil {
		return images.Result{}, fmt.Errorf("services.%s.build.context %s: %w", b.Service, b.Build.Context, err)
	}
	return s.builder.Build(ctx, images.Request{
		Repository: b.App + "/" + schema.ObjectName(b.Service),
		Source:     in.tree, Context: b.Build.Context, ContextKey: ctxKey,
		Dockerfile: b.Build.Dockerfile, Args: b.Build.Args, Target: b.Build.Target,
	})
}

// waitingFor says what the environment waits for; s.mu is held.
func (j *imageJob) waitingFor(mode string) string {
	refs := slices.Sorted(maps.Keys(j.pending))
	verb := "Waiting for image"
	if mode == config.ImagesBuildKit {
		verb = "Building image"
	}
	if len(refs) == 0 {
		return verb + "s"
	}
	msg := verb + " " + refs[0]
	if len(refs) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(refs)-1)
	}
	return msg
}

// firstImageError is the error of the first image without one, in
// template order, naming its service.
func firstImageError(report []ImageStatus) error {
	for _, r := range report {
		if r.Error != "" {
			return fmt.Errorf("service %s: %s", r.Service, r.Error)
		}
	}
	return errors.New("an image could not be had")
}

// inputsID identifies a job's inputs: what is built or waited for, from
// which commits.
func inputsID(inputs []imageInput) string {
	h := sha256.New()
	for _, in := range inputs {
		b := in.build
		keys := slices.Sorted(maps.Keys(b.Build.Args))
		args := make([]string, len(keys))
		for i, k := range keys {
			args[i] = k + "=" + b.Build.Args[k]
		}
		for _, p := range []string{b.App, b.Service, b.Image, in.commit, b.Build.Context, b.Build.Dockerfile, b.Build.Target, strings.Join(args, "\x01")} {
			fmt.Fprintf(h, "%d:%s\n", len(p), p)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pinsID identifies a set of pins, for the render cache's key.
func pinsID(pins map[string]string) string {
	if len(pins) == 0 {
		return ""
	}
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(pins)) {
		fmt.Fprintf(h, "%s=%s\n", k, pins[k])
	}
	return "\x00images:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// imagePins gives a render the pins of its environment's built images.
type imagePins func(key envKey, in render.Input, a *appRunner) (map[string]string, error)

// noPins renders built services with their references as they are.
func noPins(envKey, render.Input, *appRunner) (map[string]string, error) { return nil, nil }

// recordedPins are the pins an environment's record holds: what it last
// ran (a teardown after a restart renders with them).
func recordedPins(st *envState) imagePins {
	return func(envKey, render.Input, *appRunner) (map[string]string, error) {
		if st == nil {
			return nil, nil
		}
		pins := map[string]string{}
		for _, im := range st.Images {
			if im.Pinned != "" {
				pins[im.Image] = im.Pinned
			}
		}
		return pins, nil
	}
}

// resolvePins gets the images of the environment's built services (build
// or external mode), for a deploy: an *imagesPending until they are all
// there. Without an images mode, nothing is pinned.
func (r *Reconciler) resolvePins(rec *envRecord) imagePins {
	if r.images == nil {
		return noPins
	}
	request := ""
	if rec != nil && rec.State != nil {
		if v, pending := workflow.Requested(rec.Annotations, rec.State.HandledRequest); pending {
			request = v
		}
	}
	return func(key envKey, in render.Input, a *appRunner) (map[string]string, error) {
		builds, err := render.Builds(in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if len(builds) == 0 {
			return nil, nil
		}
		inputs := make([]imageInput, 0, len(builds))
		for _, b := range builds {
			in, err := r.imageInput(b, in, a)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			inputs = append(inputs, in)
		}
		return r.images.resolve(key, inputs, request)
	}
}

// imageInput finds where a build's sources are: the environment's own
// repository, or an imported app's.
func (r *Reconciler) imageInput(b render.ImageBuild, in render.Input, a *appRunner) (imageInput, error) {
	if b.App == a.cfg.Name {
		return imageInput{build: b, src: a.src, tree: in.Tree, commit: in.Context.Commit}, nil
	}
	for _, im := range in.Imports {
		if im.App == b.App && r.apps[im.App] != nil {
			return imageInput{build: b, src: r.apps[im.App].src, tree: im.Tree, commit: im.Commit}, nil
		}
	}
	return imageInput{}, fmt.Errorf("services.%s: no repository for app %s to build from", b.Service, b.App)
}

// waitForImages records that the environment waits for its images: what
// runs keeps running. Written once per wait, not on every look.
func (r *Reconciler) waitForImages(ctx context.Context, key envKey, rec *envRecord, commit, message string) error {
	prev := r.status.get(key)
	if prev != nil && prev.Phase == PhaseWaiting && prev.Message == message {
		return nil
	}
	st := stateFrom(key, rec, commit)
	st.Phase, st.Message, st.LastError, st.LastTransition = PhaseWaiting, message, "", time.Now().UTC()
	st.TargetCommit = commit
	r.status.set(key, st)
	if st.Namespace == "" || (prev != nil && prev.Phase == PhaseWaiting) {
		return nil
	}
	return r.save(ctx, st)
}

// imagesFailed records an image that could not be had (the failing build
// step and its log, or the wait's deadline); what runs keeps running, and
// nothing is retried until the next push or a deploy request.
func (r *Reconciler) imagesFailed(ctx context.Context, key envKey, rec *envRecord, commit string, f *imageFailure) error {
	msg := fmt.Sprintf("%s: commit %s: %s", key, short(commit), f.Error())
	if r.failedWith(key, msg) {
		return nil
	}
	st := stateFrom(key, rec, commit)
	st.Phase, st.Message, st.LastError, st.LastTransition, st.Images = PhaseFailed, "", msg, time.Now().UTC(), f.report
	st.TargetCommit = commit
	r.status.set(key, st)
	if st.Namespace == "" {
		return nil
	}
	return r.save(ctx, st)
}
