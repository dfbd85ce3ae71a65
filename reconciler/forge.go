package reconciler

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/config"
	"github.com/arbordev/arbor/forge"
)

// Forge report backoff: a write that fails is tried again after
// forgeRetryMin, doubling up to forgeRetryMax.
const (
	forgeRetryMin = time.Second
	forgeRetryMax = 5 * time.Minute
)

// forgeRunner is an app's forge: its open pull requests (which branches get
// an environment in pull_requests mode, and which pull request a branch's
// comment goes on), and the reports of its environments — a commit status
// and one comment per pull request — written by a goroutine of their own,
// off the reconcile path: a forge that is down, refuses the token or
// limits the rate never stops or undoes a deploy.
type forgeRunner struct {
	client forge.Forge
	mode   string
	filter config.PullRequestFilter

	mu      sync.Mutex
	etag    string
	prs     map[string]forge.PullRequest // open same-repo pull requests by head branch; nil until listed
	closed  map[string]forge.PullRequest // pull requests gone since the last listing, to say so on
	dirty   map[string]bool              // branches whose report is due
	listDue bool                         // branches mode: list pull requests on the writer's goroutine
	lastErr error
	wake    chan struct{}

	// reported are the pull requests whose branch had a status while open
	// (in this process), or whose environment's record names them: only
	// these are told that their environment is gone when they close.
	reported map[int64]bool
}

func newForgeRunner(a config.App, client forge.Forge) *forgeRunner {
	return &forgeRunner{client: client, mode: a.Environments, filter: a.PullRequests,
		dirty: map[string]bool{}, closed: map[string]forge.PullRequest{}, reported: map[int64]bool{}, wake: make(chan struct{}, 1)}
}

// list lists the open pull requests, conditionally (an unchanged listing
// costs the forge no rate limit where it sends ETags). A failed listing
// keeps the last one and is returned: in pull_requests mode the branch
// listing then fails too, and nothing is deleted.
func (f *forgeRunner) list(ctx context.Context) (map[string]forge.PullRequest, error) {
	f.mu.Lock()
	etag := f.etag
	f.mu.Unlock()
	l, err := f.client.ListPullRequests(ctx, etag)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		return f.prs, fmt.Errorf("list pull requests: %w", err)
	}
	if l.NotModified && f.prs != nil {
		return f.prs, nil
	}
	prs := make(map[string]forge.PullRequest, len(l.PullRequests))
	for _, pr := range l.PullRequests {
		if pr.SameRepo {
			prs[pr.HeadBranch] = pr
		}
	}
	for b, pr := range f.prs {
		if _, open := prs[b]; !open {
			f.closed[b] = pr
			f.mark(b)
		}
	}
	for b, pr := range prs {
		if old, ok := f.prs[b]; !ok || !slices.Equal(old.Labels, pr.Labels) || old.HeadSHA != pr.HeadSHA {
			f.mark(b)
		}
		delete(f.closed, b)
	}
	f.prs, f.etag = prs, l.ETag
	return prs, nil
}

// deploys reports whether branch gets an environment: every branch in
// branches mode; in pull_requests mode, the head of an open pull request
// of the repository itself that passes the filter (never a draft unless
// asked; one of the labels when labels are given).
func (f *forgeRunner) deploys(prs map[string]forge.PullRequest, branch string) bool {
	if f == nil || f.mode != config.EnvironmentsPullRequests {
		return true
	}
	pr, ok := prs[branch]
	if !ok || (pr.Draft && !f.filter.Drafts) {
		return false
	}
	if len(f.filter.Labels) == 0 {
		return true
	}
	for _, l := range pr.Labels {
		if slices.Contains(f.filter.Labels, l) {
			return true
		}
	}
	return false
}

// mark makes branch's report due and wakes the writer. Called with f.mu held.
func (f *forgeRunner) mark(branch string) {
	f.dirty[branch] = true
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// due marks branch's report due (the environment's status changed).
func (f *forgeRunner) due(branch string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mark(branch)
}

// closing notes that branch's environment goes while its pull request
// number is not open: the comment on it says so, even when no listing of
// this daemon saw it open (it closed while arbor was down).
func (f *forgeRunner) closing(branch string, number int64) {
	if f == nil || number == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reported[number] = true // it had an environment
	if _, open := f.prs[branch]; !open {
		f.closed[branch] = forge.PullRequest{Number: number, HeadBranch: branch}
		f.mark(branch)
	}
}

// relist has the writer's goroutine list the pull requests (branches mode:
// the listing only says where comments go, so it stays off the refresh path,
// where a forge that never answers would hold up deploys).
func (f *forgeRunner) relist() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listDue = true
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// takeListDue reports whether a listing is due, and clears it.
func (f *forgeRunner) takeListDue() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	due := f.listDue
	f.listDue = false
	return due
}

// openCount is the number of open pull requests last listed.
func (f *forgeRunner) openCount() int {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.prs)
}

// take returns and clears the due branches.
func (f *forgeRunner) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.dirty))
	for b := range f.dirty {
		out = append(out, b)
	}
	clear(f.dirty)
	slices.Sort(out)
	return out
}

// pullRequest returns branch's open pull request, or its last one when it
// closed since (closed true), or ok false.
func (f *forgeRunner) pullRequest(branch string) (pr forge.PullRequest, closed, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pr, ok := f.prs[branch]; ok {
		return pr, false, true
	}
	pr, ok = f.closed[branch]
	return pr, true, ok
}

func (f *forgeRunner) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastErr = err
}

// Err is the last error of the forge (listing or report), nil once one works.
func (f *forgeRunner) Err() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// runReports writes the due reports of app a until ctx ends: a burst of
// changes to one environment ends in one write per change of what the
// forge shows (the client sends nothing unchanged), and a failed write is
// tried again with backoff, keeping the branch due.
func (r *Reconciler) runReports(ctx context.Context, a *appRunner) {
	f := a.forge
	wait := forgeRetryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		}
		failed := false
		if f.takeListDue() {
			if _, err := f.list(ctx); err != nil && ctx.Err() == nil {
				failed = true // the next refresh lists again
				f.setErr(err)
				r.opts.Metrics.forgeErrors.WithLabelValues(a.cfg.Name).Inc()
				r.log.Warn("pull request listing failed; will retry", "app", a.cfg.Name, "error", err, "retry_in", wait)
			}
		}
		for _, b := range f.take() {
			if err := r.report(ctx, a, b); err != nil && ctx.Err() == nil {
				failed = true
				f.due(b)
				f.setErr(err)
				r.opts.Metrics.forgeErrors.WithLabelValues(a.cfg.Name).Inc()
				r.log.Warn("forge report failed; will retry", "app", a.cfg.Name, "branch", b, "error", err, "retry_in", wait)
			}
		}
		r.observeRateLimit(a)
		if !failed {
			wait = forgeRetryMin
			f.setErr(nil)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, forgeRetryMax)
	}
}

// report writes branch's commit status and, when the branch has a pull
// request, the app's comment on it.
func (r *Reconciler) report(ctx context.Context, a *appRunner, branch string) error {
	key := envKey{App: a.cfg.Name, Branch: branch}
	st := r.status.get(key)
	if st == nil {
		if rec := r.cache.env(key.App, key.Branch); rec != nil {
			st = rec.State
		}
	}
	pr, closed, hasPR := a.forge.pullRequest(branch)
	if st != nil && !closed {
		if sha, s, ok := commitStatus(a.cfg.Name, st, r.problemSummary(st)); ok {
			if err := a.forge.client.SetStatus(ctx, sha, s); err != nil {
				return fmt.Errorf("commit status: %w", err)
			}
		}
	}
	if !hasPR || (st == nil && !closed) {
		return nil // no pull request, or nothing to say on it yet
	}
	if !a.forge.commentDue(branch, pr.Number, st, closed) {
		return nil // closed without ever having had an environment: nothing to say
	}
	if st != nil && !closed && transient(st.Phase) && !waitingForSlot(st) {
		return nil // the status says pending; the comment waits for where it lands
	}
	body := forge.RenderComment(r.comment(ctx, a, key, st, closed))
	if _, err := a.forge.client.UpsertComment(ctx, pr.Number, body); err != nil {
		return fmt.Errorf("comment on #%d: %w", pr.Number, err)
	}
	if closed {
		a.forge.mu.Lock()
		delete(a.forge.closed, branch)
		delete(a.forge.reported, pr.Number)
		a.forge.mu.Unlock()
	}
	return nil
}

// commentDue reports whether pull request number's comment is written:
// always while its branch has a status (st, which it remembers), and once
// closed only when its branch had an environment or a status — a pull
// request never deployed (unlabelled, say) is not told that its
// environment is deleted.
func (f *forgeRunner) commentDue(branch string, number int64, st *envState, closed bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st != nil {
		f.reported[number] = true
		return true
	}
	if !closed || f.reported[number] {
		return true
	}
	delete(f.closed, branch)
	return false
}

// commitStatus is what the forge shows of an environment on its commit;
// problems is the short diagnosis of a deploying or failed one ("" when none).
func commitStatus(app string, st *envState, problems string) (string, forge.Status, bool) {
	s := forge.Status{Context: "arbor/" + app}
	sha := st.Commit
	switch st.Phase {
	case PhaseReady:
		s.State, s.Description = forge.StateSuccess, "environment ready in "+st.Namespace
		if problems != "" {
			// a task that failed without halt_on_error, or a pod that broke since
			s.Description += ", with problems: " + problems
		}
		if len(st.URLs) > 0 {
			s.TargetURL = st.URLs[0].URL
		}
	case PhasePending, PhaseDeploying:
		s.State, s.Description = forge.StatePending, "deploying to "+st.Namespace
		if problems != "" {
			s.Description += ": " + problems
		}
	case PhaseWaiting:
		s.State, s.Description = forge.StatePending, st.Message
	case PhasePaused:
		// success: the environment exists and keeps its data
		s.State, s.Description = forge.StateSuccess, pausedDescription(app, st)
		if wakesOnRequest(st) && len(st.URLs) > 0 {
			s.TargetURL = st.URLs[0].URL // a visit wakes it
		}
	case PhaseInvalid:
		sha = st.InvalidCommit
		s.State, s.Description = forge.StateFailure, firstFinding(st)
	case PhaseFailed:
		s.State, s.Description = forge.StateFailure, joinReasons(problems, st.LastError)
	case PhaseConflict:
		s.State, s.Description = forge.StateError, st.LastError
	default:
		return "", s, false // deleting, expired: the commit's status stays
	}
	if st.TargetCommit != "" && (st.Phase == PhaseWaiting || st.Phase == PhaseFailed) {
		sha = st.TargetCommit // the commit that waits or failed; Commit still runs
	}
	if sha == "" {
		return "", s, false
	}
	s.Description = forge.Description(s.Description, 0)
	return sha, s, true
}

// joinReasons puts the diagnosis (what to fix) before the daemon's error.
func joinReasons(problems, lastError string) string {
	switch {
	case problems == "":
		return lastError
	case lastError == "":
		return problems
	}
	return problems + "; " + lastError
}

// firstFinding is the first error finding, FILE:LINE:COL and message.
func firstFinding(st *envState) string {
	if errs := st.Findings.Errors(); len(errs) > 0 {
		return errs[0].String()
	}
	return st.LastError
}

// comment is the pull request comment of an environment: its phase, URLs,
// commit and expiry, and its manifest diff against the tracking branch's
// environment (rendered, not necessarily deployed).
func (r *Reconciler) comment(ctx context.Context, a *appRunner, key envKey, st *envState, closed bool) forge.Comment {
	c := forge.Comment{App: a.cfg.Name, Gone: closed}
	if st == nil {
		c.Phase = "no environment" // not deployed yet, or not (any longer) one arbor deploys
		return c
	}
	c.Environment, c.Phase, c.Commit, c.Expires = st.Namespace, st.Phase, st.Commit, st.ExpiresAt
	switch st.Phase {
	case PhaseReady:
		c.Reason = r.problemSummary(st) // a service that broke after all, or a task that failed without halting
	case PhaseInvalid:
		c.Reason = firstFinding(st)
	case PhasePaused:
		c.Reason, c.Since = pauseReasonText(st), pausedSince(st)
		c.WakeURL, c.ResumeCommand = wakeURL(st), resumeCommand(a.cfg.Name, st)
	case PhaseWaiting:
		c.Reason = st.Message // what it waits for
		if waitingForSlot(st) {
			c.Since = st.LastTransition // a slot may take days
		}
	default:
		c.Reason = joinReasons(r.problemSummary(st), st.LastError)
	}
	for _, u := range st.URLs {
		c.URLs = append(c.URLs, u.URL)
	}
	c.Diff, c.DiffBase = r.diffAgainstTracking(ctx, a, key)
	return c
}

// diffAgainstTracking renders the tracking branch (the template's
// tracking_branch on the default branch, else the default branch) and
// compares the environment's last render with it. "" when either render is
// missing or the environment is the tracking branch's own.
func (r *Reconciler) diffAgainstTracking(ctx context.Context, a *appRunner, key envKey) (string, string) {
	lst := a.current()
	head := r.renders.latest(key)
	if lst == nil || head == nil {
		return "", ""
	}
	tracking, err := r.trackingBranch(ctx, a, lst)
	if _, listed := lst.Branches[tracking]; err != nil || !listed {
		tracking = lst.Default
	}
	if key.Branch == tracking {
		return "", ""
	}
	var recorded *envState
	if rec := r.cache.env(key.App, tracking); rec != nil {
		recorded = rec.State
	}
	base, findings, err := r.build(ctx, a, tracking, lst.Branches[tracking], lst.Default, recordedPins(recorded))
	if err != nil || findings.HasErrors() || base == nil {
		return "", ""
	}
	d := apply.CompareEnvironments(
		apply.Rendered{Objects: base.Objects, Namespace: base.Namespace, EnvID: base.EnvID},
		apply.Rendered{Objects: head.Objects, Namespace: head.Namespace, EnvID: head.EnvID})
	return d, tracking
}

// observeRateLimit exports what the forge said of its rate limit.
func (r *Reconciler) observeRateLimit(a *appRunner) {
	rl, v := a.forge.client.RateLimit(), -1.0
	if rl.Known {
		v = float64(rl.Remaining)
	}
	r.opts.Metrics.forgeRateRemaining.WithLabelValues(a.cfg.Name).Set(v)
}

// transient phases pass on their own: the comment is not edited for them,
// so a push costs the forge three writes (pending and success statuses and
// one comment edit), not four.
func transient(phase string) bool {
	return phase == PhasePending || phase == PhaseDeploying || phase == PhaseDeleting || phase == PhaseWaiting
}
