package reconciler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/forgetest"
	"github.com/arbordev/arbor/reconciler"
)

// commentHolding waits until arbor's one comment on pull request number
// holds every string of want and none of unwanted.
func (p *prFixture) commentHolding(number int64, want []string, unwanted ...string) forgetest.Comment {
	p.t.Helper()
	cs := p.waitComment(number, "a comment holding "+strings.Join(want, ", "), func(cs []forgetest.Comment) bool {
		if len(cs) != 1 {
			return false
		}
		for _, w := range want {
			if !strings.Contains(cs[0].Body, w) {
				return false
			}
		}
		for _, u := range unwanted {
			if strings.Contains(cs[0].Body, u) {
				return false
			}
		}
		return true
	})
	return cs[0]
}

// A pull request's environment paused through the API: Gitea's commit
// status stays success and says it is paused, why, where and that a
// request wakes it; the comment shows phase Paused, why, since when and
// how to wake it (its URL, arbor env resume). Resumed, both say ready
// again, in the same comment.
func TestForgeShowsPausedEnvironment(t *testing.T) {
	p := newPRFixture(t)
	pd := startPauseDaemon(t, newConfig(t, p.own, p.config(p.f.URL, p.f.URL, false)), nil)
	p.d = pd.daemon
	p.f.AddWebhook(t, p.repo, p.d.srv.URL+"/hooks/gitea", p.secret, "push", "pull_request")
	sha := p.push("feature/p", "p", map[string]string{"p.txt": "p"})
	pr := p.f.OpenPR(t, p.repo, "feature/p", "main", "feature p")
	env := p.d.waitReadyAt(p.app, "feature/p", sha, prWait)
	p.waitStatus(sha, "success", "environment ready in "+env.Namespace)
	ready := p.commentHolding(pr.Number, []string{"| **Phase** | Ready |"})

	setPaused(t, p.d, p.app, "feature/p", true)
	paused := p.d.waitPhase(p.app, "feature/p", reconciler.PhasePaused, prWait)
	s := p.waitStatus(sha, "success", "paused (api) in "+env.Namespace+"; wakes on the next request")
	if s.TargetURL != env.URLs[0].URL {
		t.Errorf("the paused status links %q, want the URL that wakes it, %s", s.TargetURL, env.URLs[0].URL)
	}
	c := p.commentHolding(pr.Number, []string{"| **Phase** | Paused |", "paused through the API",
		"| **Since** | " + paused.PausedSince.UTC().Format("2006-01-02T15:04:05Z"),
		"open " + env.URLs[0].URL + " (the first request wakes it)", "`arbor env resume " + p.app + " " + env.EnvID + "`"})
	if c.ID != ready.ID {
		t.Errorf("the pause wrote comment %d, not an edit of %d", c.ID, ready.ID)
	}
	t.Logf("paused: status %q; comment:\n%s", s.Description, c.Body)

	setPaused(t, p.d, p.app, "feature/p", false)
	p.d.waitReadyAt(p.app, "feature/p", sha, prWait)
	p.waitStatus(sha, "success", "environment ready in "+env.Namespace)
	p.commentHolding(pr.Number, []string{"| **Phase** | Ready |"}, "Paused", "**Wake**")
}

// max_environments: 1 with two pull requests: the second waits. Gitea shows
// a pending status on its head with the slot message, and its comment says
// it waits for a slot and since when. When the first pull request closes,
// its slot frees and the second deploys: success, and the comment says Ready.
func TestForgeShowsSlotWait(t *testing.T) {
	p := newPRFixture(t)
	cfg := strings.Replace(p.config(p.f.URL, p.f.URL, false), "  poll_interval: 1m\n", "  poll_interval: 1m\n  max_environments: 1\n", 1)
	if !strings.Contains(cfg, "max_environments: 1") {
		t.Fatalf("no cap in the config:\n%s", cfg)
	}
	p.d = startDaemon(t, newConfig(t, p.own, cfg))
	p.f.AddWebhook(t, p.repo, p.d.srv.URL+"/hooks/gitea", p.secret, "push", "pull_request")
	first := p.push("feature/first", "first", map[string]string{"f.txt": "1"})
	prFirst := p.f.OpenPR(t, p.repo, "feature/first", "main", "first")
	p.d.waitReadyAt(p.app, "feature/first", first, prWait)

	second := p.push("feature/second", "second", map[string]string{"s.txt": "2"})
	prSecond := p.f.OpenPR(t, p.repo, "feature/second", "main", "second")
	want := "Waiting for a slot: 1 of 1 environments of " + p.app + " in use"
	waiting := p.d.waitPhase(p.app, "feature/second", reconciler.PhaseWaiting, prWait)
	if waiting.Message != want || waiting.TargetCommit != second {
		t.Errorf("waiting branch's status: message %q, target %q; want %q on %s", waiting.Message, waiting.TargetCommit, want, second)
	}
	p.waitStatus(second, "pending", want)
	c := p.commentHolding(prSecond.Number, []string{"| **Phase** | Waiting |", want, "| **Since** | "})
	t.Logf("waiting comment:\n%s", c.Body)

	p.f.SetPRState(t, p.repo, prFirst.Number, "closed")
	p.d.waitReadyAt(p.app, "feature/second", second, prWait)
	p.waitStatus(second, "success", "environment ready in ")
	p.commentHolding(prSecond.Number, []string{"| **Phase** | Ready |"}, "Waiting for a slot")
}

// A pull request that never had an environment (unlabelled, in
// pull_requests mode with a label filter) gets no comment when it closes;
// a labelled one closed after it gets the "environment deleted" comment,
// which shows that the closings were reported.
func TestClosedPullRequestWithoutEnvironmentGetsNoComment(t *testing.T) {
	p := newPRFixture(t)
	p.start(p.f.URL, true)
	label := p.f.CreateLabel(t, p.repo, "preview")
	p.push("feature/plain", "plain", map[string]string{"u.txt": "u"})
	plain := p.f.OpenPR(t, p.repo, "feature/plain", "main", "plain")
	sha := p.push("feature/labelled", "labelled", map[string]string{"l.txt": "l"})
	labelled := p.f.OpenPR(t, p.repo, "feature/labelled", "main", "labelled")
	p.f.AddLabels(t, p.repo, labelled.Number, label)
	p.d.waitReadyAt(p.app, "feature/labelled", sha, prWait)
	p.commentHolding(labelled.Number, []string{"| **Phase** | Ready |"})

	p.f.SetPRState(t, p.repo, plain.Number, "closed")
	time.Sleep(2 * time.Second) // a listing and a report round
	p.f.SetPRState(t, p.repo, labelled.Number, "closed")
	p.commentHolding(labelled.Number, []string{"its environment is deleted"})
	time.Sleep(time.Second)
	if cs := p.comments(plain.Number); len(cs) != 0 {
		t.Errorf("the pull request that never had an environment got %d comments; the first:\n%s", len(cs), cs[0].Body)
	}
}
