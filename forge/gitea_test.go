package forge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arbordev/arbor/forge"
	"github.com/arbordev/arbor/internal/forgetest"
	"github.com/arbordev/arbor/internal/gittest"
)

// deliveryWait bounds the wait for Gitea's webhook queue; not a performance bound.
const deliveryWait = 2 * time.Minute

func commitFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Run(t, dir, "add", name)
	gittest.Run(t, dir, "commit", "-q", "-m", "change "+name)
	return gittest.Run(t, dir, "rev-parse", "HEAD")
}

// giteaRepo makes a repository on the test Gitea with main and the given
// branches pushed (each one commit ahead of main), and returns the local
// clone's directory and each branch's head.
func giteaRepo(t *testing.T, f *forgetest.Forge, branches ...string) (forgetest.Repo, string, map[string]string) {
	t.Helper()
	repo := f.CreateRepo(t, t.Name())
	dir := t.TempDir()
	gittest.Run(t, dir, "init", "-q", "-b", "main")
	heads := map[string]string{"main": commitFile(t, dir, "README.md", "hello\n")}
	for _, b := range branches {
		gittest.Run(t, dir, "checkout", "-q", "-b", b, "main")
		heads[b] = commitFile(t, dir, b+".txt", b+"\n")
	}
	gittest.Run(t, dir, "checkout", "-q", "main")
	f.Push(t, dir, repo, append([]string{"main"}, branches...)...)
	for _, b := range branches {
		waitBranch(t, f, repo, b, heads[b])
	}
	return repo, dir, heads
}

// waitBranch waits until Gitea's API shows branch at sha: Gitea records pushed
// branches in a background queue, and refuses a pull request of a branch it
// has not recorded yet.
func waitBranch(t *testing.T, f *forgetest.Forge, repo forgetest.Repo, branch, sha string) {
	t.Helper()
	deadline := time.Now().Add(deliveryWait)
	for {
		var b struct {
			Commit struct {
				ID string `json:"id"`
			} `json:"commit"`
		}
		err := f.Do(http.MethodGet, "/repos/"+repo.FullName+"/branches/"+branch, nil, &b)
		if err == nil && b.Commit.ID == sha {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("branch %s never reached %s on Gitea (last: %v, %s)", branch, sha, err, b.Commit.ID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func giteaClient(t *testing.T, f *forgetest.Forge, repo forgetest.Repo, app string) forge.Forge {
	t.Helper()
	g, err := forge.New(forge.Options{Type: forge.Gitea, URL: f.URL, Repo: repo.FullName, Token: f.Token(), App: app})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func byNumber(prs []forge.PullRequest) map[int64]forge.PullRequest {
	m := map[int64]forge.PullRequest{}
	for _, p := range prs {
		m[p.Number] = p
	}
	return m
}

// TestGiteaListPullRequests lists the open pull requests of a real Gitea
// repository: head branch and commit, labels, draft; a fork's pull request
// left out; an unchanged listing reported NotModified; a push and a close
// seen in the next listing.
func TestGiteaListPullRequests(t *testing.T) {
	f := forgetest.Gitea(t)
	repo, dir, heads := giteaRepo(t, f, "feature", "wip")
	ctx := ctxT(t)
	g := giteaClient(t, f, repo, "shop")

	feature := f.OpenPR(t, repo, "feature", "main", "Add a feature")
	preview := f.CreateLabel(t, repo, "preview")
	f.AddLabels(t, repo, feature.Number, preview)
	wip := f.OpenPR(t, repo, "wip", "main", "WIP: not yet")
	forked := forkPR(t, f, repo)

	first, err := g.ListPullRequests(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := byNumber(first.PullRequests)
	if len(got) != 2 {
		t.Fatalf("listed %+v; want exactly #%d and #%d (not the fork's #%d)", first.PullRequests, feature.Number, wip.Number, forked)
	}
	want := forge.PullRequest{Number: feature.Number, HeadBranch: "feature", HeadSHA: heads["feature"], SameRepo: true,
		Labels: []string{"preview"}, State: "open", URL: feature.HTMLURL}
	if p := got[feature.Number]; !equalPR(p, want) {
		t.Errorf("feature pull request: got %+v, want %+v", p, want)
	}
	if p := got[wip.Number]; !p.Draft || p.HeadBranch != "wip" || p.HeadSHA != heads["wip"] || len(p.Labels) != 0 {
		t.Errorf("WIP pull request: got %+v, want a draft of wip@%s without labels", p, heads["wip"])
	}
	if first.ETag == "" || first.NotModified {
		t.Fatalf("first listing: ETag %q, NotModified %v", first.ETag, first.NotModified)
	}

	again, err := g.ListPullRequests(ctx, first.ETag)
	if err != nil {
		t.Fatal(err)
	}
	if !again.NotModified || len(again.PullRequests) != 0 || again.ETag != first.ETag {
		t.Errorf("unchanged listing: %+v, want NotModified with the same ETag", again)
	}

	gittest.Run(t, dir, "checkout", "-q", "feature")
	newHead := commitFile(t, dir, "more.txt", "more\n")
	f.Push(t, dir, repo, "feature")
	f.SetPRState(t, repo, wip.Number, "closed")
	changed := waitListing(t, ctx, g, first.ETag, func(l forge.Listing) bool {
		p, ok := byNumber(l.PullRequests)[feature.Number]
		return ok && p.HeadSHA == newHead
	})
	if changed.NotModified || changed.ETag == first.ETag {
		t.Errorf("listing after a push: NotModified %v, ETag unchanged %v", changed.NotModified, changed.ETag == first.ETag)
	}
	if _, ok := byNumber(changed.PullRequests)[wip.Number]; ok || len(changed.PullRequests) != 1 {
		t.Errorf("listing after closing #%d: %+v, want only #%d", wip.Number, changed.PullRequests, feature.Number)
	}
}

func equalPR(a, b forge.PullRequest) bool {
	return a.Number == b.Number && a.HeadBranch == b.HeadBranch && a.HeadSHA == b.HeadSHA && a.SameRepo == b.SameRepo &&
		slices.Equal(a.Labels, b.Labels) && a.Draft == b.Draft && a.State == b.State && a.URL == b.URL
}

// waitListing lists until ok holds: Gitea updates a pull request's head from
// a push in a background queue.
func waitListing(t *testing.T, ctx context.Context, g forge.Forge, etag string, ok func(forge.Listing) bool) forge.Listing {
	t.Helper()
	deadline := time.Now().Add(deliveryWait)
	for {
		l, err := g.ListPullRequests(ctx, etag)
		if err != nil {
			t.Fatal(err)
		}
		if !l.NotModified && ok(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listing never showed the change: last %+v", l)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// forkPR forks repo into a new organisation, pushes a branch there and opens a
// pull request from it into repo; it returns its number.
func forkPR(t *testing.T, f *forgetest.Forge, repo forgetest.Repo) int64 {
	t.Helper()
	org := strings.ToLower(strings.ReplaceAll(repo.Name, "-", "")) + "fork"
	if len(org) > 39 {
		org = org[len(org)-39:]
	}
	f.Call(t, http.MethodPost, "/orgs", map[string]any{"username": org, "visibility": "public"}, nil)
	var fork forgetest.Repo
	f.Call(t, http.MethodPost, "/repos/"+repo.FullName+"/forks", map[string]any{"organization": org}, &fork)
	t.Cleanup(func() {
		f.Call(t, http.MethodDelete, "/repos/"+fork.FullName, nil, nil)
		f.Call(t, http.MethodDelete, "/orgs/"+org, nil, nil)
	})
	dir := t.TempDir()
	gittest.Run(t, dir, "init", "-q", "-b", "from-fork")
	commitFile(t, dir, "fork.txt", "from a fork\n")
	f.Push(t, dir, fork, "--force", "from-fork")
	var pr forgetest.PullRequest
	f.Call(t, http.MethodPost, "/repos/"+repo.FullName+"/pulls", map[string]any{"head": org + ":from-fork", "base": "main", "title": "From a fork"}, &pr)
	return pr.Number
}

// TestGiteaSetStatus sets commit statuses on a real Gitea and reads them back;
// setting the same status twice sends it once.
func TestGiteaSetStatus(t *testing.T) {
	f := forgetest.Gitea(t)
	repo, _, heads := giteaRepo(t, f, "feature")
	ctx := ctxT(t)
	g := giteaClient(t, f, repo, "shop")
	sha := heads["feature"]

	pending := forge.Status{Context: "arbor/shop", State: forge.StatePending, Description: "deploying\nthe environment"}
	if err := g.SetStatus(ctx, sha, pending); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 400)
	success := forge.Status{Context: "arbor/shop", State: forge.StateSuccess, Description: long, TargetURL: "http://shop-feature.example.test/"}
	for range 2 {
		if err := g.SetStatus(ctx, sha, success); err != nil {
			t.Fatal(err)
		}
	}
	// Gitea orders statuses of one second arbitrarily: compare as a set.
	got := f.Statuses(t, repo, sha)
	if len(got) != 2 {
		t.Fatalf("statuses on %s: %+v, want 2 (pending, then success once)", sha, got)
	}
	if got[0].State == "pending" {
		got[0], got[1] = got[1], got[0]
	}
	if got[0].State != "success" || got[0].Context != "arbor/shop" || got[0].TargetURL != success.TargetURL || len([]rune(got[0].Description)) != 255 || !strings.HasSuffix(got[0].Description, "…") {
		t.Errorf("success status: %+v, want success to %s with a description cut to 255", got[0], success.TargetURL)
	}
	if got[1].State != "pending" || got[1].Description != "deploying the environment" {
		t.Errorf("pending status: %+v, want pending \"deploying the environment\"", got[1])
	}
	err := g.SetStatus(ctx, "0000000000000000000000000000000000000001", pending)
	var fe *forge.Error
	if !errors.As(err, &fe) || fe.StatusCode == 0 || !strings.Contains(err.Error(), "gitea POST /repos/"+repo.FullName+"/statuses/") || strings.Contains(err.Error(), f.Token()) {
		t.Errorf("status on a missing commit: %v; want a gitea error naming the method and path, without the token", err)
	}
}

// TestGiteaUpsertComment keeps one comment per app on a real pull request:
// created, then edited, found again by a new client (a restart), left alone
// when unchanged; other comments (another app's, another user's with this
// app's marker) are never touched.
func TestGiteaUpsertComment(t *testing.T) {
	f := forgetest.Gitea(t)
	repo, _, _ := giteaRepo(t, f, "feature")
	ctx := ctxT(t)
	pr := f.OpenPR(t, repo, "feature", "main", "Add a feature")
	human := f.AddComment(t, repo, pr.Number, "looks good")
	other := f.AddComment(t, repo, pr.Number, forge.Marker("other")+"\nanother app's comment")
	impostor := commentAs(t, f, repo, pr.Number, forge.Marker("shop")+"\nnot arbor's")

	g := giteaClient(t, f, repo, "shop")
	r1, err := g.UpsertComment(ctx, pr.Number, "first")
	if err != nil || r1.Action != forge.CommentCreated {
		t.Fatalf("first upsert: %+v, %v; want created", r1, err)
	}
	r2, err := g.UpsertComment(ctx, pr.Number, "second")
	if err != nil || r2.Action != forge.CommentEdited || r2.ID != r1.ID {
		t.Fatalf("second upsert: %+v, %v; want comment %d edited", r2, err, r1.ID)
	}
	restarted := giteaClient(t, f, repo, "shop")
	r3, err := restarted.UpsertComment(ctx, pr.Number, "third")
	if err != nil || r3.Action != forge.CommentEdited || r3.ID != r1.ID {
		t.Fatalf("upsert after a restart: %+v, %v; want comment %d edited", r3, err, r1.ID)
	}
	r4, err := restarted.UpsertComment(ctx, pr.Number, "third")
	if err != nil || r4.Action != forge.CommentUnchanged {
		t.Fatalf("unchanged upsert: %+v, %v; want unchanged", r4, err)
	}
	r5, err := giteaClient(t, f, repo, "shop").UpsertComment(ctx, pr.Number, "third")
	if err != nil || r5.Action != forge.CommentUnchanged || r5.ID != r1.ID {
		t.Fatalf("unchanged upsert after another restart: %+v, %v; want %d unchanged", r5, err, r1.ID)
	}

	comments := f.Comments(t, repo, pr.Number)
	want := map[int64]string{human.ID: "looks good", other.ID: other.Body, impostor: forge.Marker("shop") + "\nnot arbor's", r1.ID: forge.Marker("shop") + "\nthird"}
	if len(comments) != len(want) {
		t.Fatalf("comments: %+v, want %d", comments, len(want))
	}
	for _, c := range comments {
		if want[c.ID] != c.Body {
			t.Errorf("comment %d: %q, want %q", c.ID, c.Body, want[c.ID])
		}
	}
}

// commentAs creates a second user and comments as that user (basic auth);
// it returns the comment's id.
func commentAs(t *testing.T, f *forgetest.Forge, repo forgetest.Repo, number int64, body string) int64 {
	t.Helper()
	user, password := createUser(t, f, "other"+strings.ToLower(strings.NewReplacer("-", "", "_", "", "/", "").Replace(repo.Name)))
	b, _ := json.Marshal(map[string]string{"body": body})
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/v1/repos/%s/issues/%d/comments", f.URL, repo.FullName, number), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		ID int64 `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("comment as %s: %s, %v", user, resp.Status, err)
	}
	return c.ID
}

// TestGiteaWebhooks reads real deliveries: a pull request opened, labelled,
// synchronized and closed, and a push, each verified with the secret (and
// refused with another) and parsed.
func TestGiteaWebhooks(t *testing.T) {
	f := forgetest.Gitea(t)
	repo, dir, heads := giteaRepo(t, f, "feature")
	recv := forgetest.NewReceiver(t)
	const secret = "webhook-secret-for-the-test"
	f.AddWebhook(t, repo, recv.URL, secret, "push", "pull_request")

	pr := f.OpenPR(t, repo, "feature", "main", "Add a feature")
	ev := nextEvent(t, recv, "pull_request", secret, forge.ActionOpened)
	if ev.Number != pr.Number || ev.HeadBranch != "feature" || ev.HeadSHA != heads["feature"] || !ev.SameRepo || ev.Repository != repo.FullName {
		t.Errorf("opened: %+v, want #%d feature@%s in %s", ev, pr.Number, heads["feature"], repo.FullName)
	}

	f.AddLabels(t, repo, pr.Number, f.CreateLabel(t, repo, "preview"))
	if ev := nextEvent(t, recv, "pull_request", secret, forge.ActionLabeled); !slices.Equal(ev.Labels, []string{"preview"}) {
		t.Errorf("labeled: %+v, want labels [preview]", ev)
	}

	gittest.Run(t, dir, "checkout", "-q", "feature")
	head := commitFile(t, dir, "more.txt", "more\n")
	f.Push(t, dir, repo, "feature")
	push := nextEvent(t, recv, "push", secret, "")
	if push.Kind != forge.KindPush || push.Branch != "feature" || push.After != head || push.Deleted {
		t.Errorf("push: %+v, want feature at %s", push, head)
	}
	if ev := nextEvent(t, recv, "pull_request", secret, forge.ActionSynchronize); ev.HeadSHA != head {
		t.Errorf("synchronize: %+v, want head %s", ev, head)
	}

	f.SetPRState(t, repo, pr.Number, "closed")
	if ev := nextEvent(t, recv, "pull_request", secret, forge.ActionClosed); ev.Number != pr.Number {
		t.Errorf("closed: %+v, want #%d", ev, pr.Number)
	}
}

// nextEvent takes the next delivery of event whose parsed action is action
// ("" for any), after checking that it verifies with secret and not with
// another secret.
func nextEvent(t *testing.T, recv *forgetest.Receiver, event, secret, action string) forge.Event {
	t.Helper()
	var ev forge.Event
	recv.Next(t, event, deliveryWait, func(d forgetest.Delivery) bool {
		e, err := readDelivery(d, secret)
		if err != nil {
			t.Errorf("%s delivery: %v", event, err)
			return false
		}
		if action != "" && e.Action != action {
			return false
		}
		if _, err := readDelivery(d, secret+"x"); !errors.Is(err, forge.ErrUnverified) {
			t.Errorf("%s delivery with another secret: %v, want ErrUnverified", event, err)
		}
		ev = e
		return true
	})
	return ev
}

// readDelivery replays a recorded delivery into ReadEvent, the forge guessed
// from its headers.
func readDelivery(d forgetest.Delivery, secret string) (forge.Event, error) {
	req, err := http.NewRequest(http.MethodPost, "http://arbor.test/hooks/gitea", bytes.NewReader(d.Body))
	if err != nil {
		return forge.Event{}, err
	}
	req.Header = d.Header.Clone()
	if kind, ok := forge.GuessType(req.Header); !ok || kind != forge.Gitea {
		return forge.Event{}, fmt.Errorf("guessed %q from Gitea's headers", kind)
	}
	return forge.ReadEvent(req, "", []byte(secret), 0)
}
