package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/internal/forgetest"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// prWait bounds each step of the pull request tests: a webhook delivery, a
// render and an apply on the local cluster.
const prWait = 90 * time.Second

// prFixture is a repository on the real Gitea, its local clone and a daemon
// whose app makes environments for its labelled pull requests.
type prFixture struct {
	t      testing.TB
	f      *forgetest.Forge
	repo   forgetest.Repo
	local  *repo
	app    string
	own    string
	secret string
	d      *daemon
}

func newPRFixture(t testing.TB) *prFixture {
	f := forgetest.Gitea(t)
	cs := testcluster.Clientset(t)
	p := &prFixture{t: t, f: f, repo: f.CreateRepo(t, "arbor-pr"), app: appName(t), own: testcluster.Namespace(t, cs), secret: randHex(16)}
	p.local = newRepo(t, webApp)
	f.Push(t, p.local.dir, p.repo, "main")
	return p
}

// config is the daemon's configuration with the forge at forgeURL and the
// repository under gitURL, for pull requests with the label preview, or for
// every pull request without labelled.
func (p *prFixture) config(forgeURL, gitURL string, labelled bool) string {
	dir := p.t.TempDir()
	secretFile := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(p.secret), 0o600); err != nil {
		p.t.Fatal(err)
	}
	labels := "[]"
	if labelled {
		labels = "[preview]"
	}
	return fmt.Sprintf(`apps:
- name: %s
  repo: %s
  poll_interval: 1m
  forge: {type: gitea, url: %q, token_file: %q}
  environments: pull_requests
  pull_requests: {labels: %s}
defaults: {domain: test.local}
server: {webhook_secret_file: %q}
`, p.app, gitURL+"/"+p.repo.FullName+".git", forgeURL, os.Getenv(forgetest.EnvTokenFile), labels, secretFile)
}

// start runs the daemon with the forge and the repository at forgeURL, and
// points the repository's webhook at it.
func (p *prFixture) start(forgeURL string, labelled bool) {
	p.d = startDaemon(p.t, newConfig(p.t, p.own, p.config(forgeURL, forgeURL, labelled)))
	p.f.AddWebhook(p.t, p.repo, p.d.srv.URL+"/hooks/gitea", p.secret, "push", "pull_request", "pull_request_label", "pull_request_sync")
}

// push commits files on branch and pushes it; it returns the commit once
// Gitea shows the branch at it.
func (p *prFixture) push(branch, msg string, files map[string]string) string {
	p.local.on(branch)
	sha := p.local.commit(msg, files)
	p.f.Push(p.t, p.local.dir, p.repo, "-f", branch)
	eventually(p.t, prWait, "Gitea shows "+branch+" at "+sha, func() bool {
		var b struct {
			Commit struct {
				ID string `json:"id"`
			} `json:"commit"`
		}
		return p.f.Do(http.MethodGet, "/repos/"+p.repo.FullName+"/branches/"+branch, nil, &b) == nil && b.Commit.ID == sha
	})
	return sha
}

// status is arbor's latest commit status on sha, or a zero one. (Gitea
// v1.26 orders statuses set within one second either way: the latest is
// the one with the largest id.)
func (p *prFixture) status(sha string) forgetest.Status {
	var last forgetest.Status
	for _, s := range p.f.Statuses(p.t, p.repo, sha) {
		if s.Context == "arbor/"+p.app && s.ID > last.ID {
			last = s
		}
	}
	return last
}

// waitStatus waits until arbor's latest status on sha is state with a
// description that holds want, and returns it.
func (p *prFixture) waitStatus(sha, state, want string) forgetest.Status {
	p.t.Helper()
	deadline := time.Now().Add(prWait)
	for {
		s := p.status(sha)
		if s.State == state && strings.Contains(s.Description, want) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %s status holding %q on %s; statuses: %+v", state, want, sha, p.f.Statuses(p.t, p.repo, sha))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// comments are arbor's comments on pull request number.
func (p *prFixture) comments(number int64) []forgetest.Comment {
	var out []forgetest.Comment
	for _, c := range p.f.Comments(p.t, p.repo, number) {
		if strings.Contains(c.Body, "arbor:comment app="+p.app) {
			out = append(out, c)
		}
	}
	return out
}

// waitComment waits until arbor's comments on pull request number pass
// ok, and shows the last ones when they never do.
func (p *prFixture) waitComment(number int64, what string, ok func([]forgetest.Comment) bool) []forgetest.Comment {
	p.t.Helper()
	var last []forgetest.Comment
	deadline := time.Now().Add(prWait)
	for {
		last = p.comments(number)
		if ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			for _, c := range last {
				p.t.Logf("comment %d:\n%s", c.ID, c.Body)
			}
			p.t.Fatalf("timed out after %s waiting for %s (%d comments of arbor's)", prWait, what, len(last))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestPullRequestEnvironments runs a pull request's life on the real Gitea
// and the real cluster: an unlabelled pull request gets nothing; the label
// brings its environment, a success status with its URL and one comment
// with the URL and the diff against main; a push edits that comment; a
// broken .release.yaml fails the status with FILE:LINE while the last good
// environment keeps running; with the forge unreachable nothing is
// deleted and the error shows; closing the pull request deletes the
// environment and says so in the comment.
func TestPullRequestEnvironments(t *testing.T) {
	p := newPRFixture(t)
	p.start(p.f.URL, true)
	label := p.f.CreateLabel(t, p.repo, "preview")
	first := p.push("feature/a", "a change", map[string]string{".release.yaml": webApp + "environment_variables:\n  defaults:\n  - {key: GREETING, value: hello}\n"})
	pr := p.f.OpenPR(t, p.repo, "feature/a", "main", "feature a")

	// A labelled pull request opened after it: once its environment is
	// Ready, the daemon has decided on the unlabelled one too.
	other := p.push("feature/b", "b", map[string]string{"b.txt": "b"})
	prB := p.f.OpenPR(t, p.repo, "feature/b", "main", "feature b")
	p.f.AddLabels(t, p.repo, prB.Number, label)
	p.d.waitReadyAt(p.app, "feature/b", other, prWait)
	time.Sleep(time.Second)
	if e := p.d.env(p.app, "feature/a"); e != nil {
		t.Fatalf("an unlabelled pull request got an environment: %+v", e)
	}

	p.f.AddLabels(t, p.repo, pr.Number, label)
	env := p.d.waitReadyAt(p.app, "feature/a", first, prWait)
	if len(env.URLs) == 0 {
		t.Fatalf("the environment has no URL: %+v", env)
	}
	url := env.URLs[0].URL
	if s := p.waitStatus(first, "success", ""); s.TargetURL != url {
		t.Errorf("the success status links %q, want the environment's URL %s", s.TargetURL, url)
	}
	cs := p.waitComment(pr.Number, "one comment with the URL and the diff", func(cs []forgetest.Comment) bool {
		return len(cs) == 1 && strings.Contains(cs[0].Body, url) && strings.Contains(cs[0].Body, "GREETING: hello") &&
			strings.Contains(cs[0].Body, "Ready")
	})
	commentID := cs[0].ID

	second := p.push("feature/a", "another change", map[string]string{"app.txt": "2"})
	p.d.waitReadyAt(p.app, "feature/a", second, prWait)
	p.waitComment(pr.Number, "the same comment edited for the new commit", func(cs []forgetest.Comment) bool {
		return len(cs) == 1 && cs[0].ID == commentID && strings.Contains(cs[0].Body, second)
	})
	p.waitStatus(second, "success", "")

	broken := p.push("feature/a", "break it", map[string]string{".release.yaml": "services:\n- name: web\n  image: [nginx\n"})
	p.waitStatus(broken, "failure", ".release.yaml:")
	if e := p.d.env(p.app, "feature/a"); e == nil || e.Commit != second {
		t.Errorf("the last good environment stopped running %s: %+v", second, e)
	}

	// The forge unreachable: nothing deleted, the error in status.
	p.d.stop()
	p.d = startDaemon(t, newConfig(t, p.own, p.config("http://127.0.0.1:1", p.f.URL, true)))
	eventually(t, prWait, "the forge's error in the app's status", func() bool {
		for _, a := range p.d.apps() {
			if a.Name == p.app && a.ForgeError != "" && a.ListingError != "" {
				return true
			}
		}
		return false
	})
	time.Sleep(2 * time.Second)
	if _, err := testcluster.Clientset(t).CoreV1().Namespaces().Get(context.Background(), env.Namespace, metav1.GetOptions{}); err != nil {
		t.Fatalf("the environment's namespace with the forge down: %v", err)
	}
	p.d.stop()

	p.start(p.f.URL, true)
	p.d.waitPhase(p.app, "feature/a", reconciler.PhaseInvalid, prWait)
	p.f.SetPRState(t, p.repo, pr.Number, "closed")
	eventually(t, prWait, "the environment deleted", func() bool {
		_, err := testcluster.Clientset(t).CoreV1().Namespaces().Get(context.Background(), env.Namespace, metav1.GetOptions{})
		return apierrors.IsNotFound(err) || (err == nil && p.d.env(p.app, "feature/a") == nil)
	})
	p.waitComment(pr.Number, "the comment saying the environment is gone", func(cs []forgetest.Comment) bool {
		return len(cs) == 1 && cs[0].ID == commentID && strings.Contains(cs[0].Body, "closed")
	})
}

// apiCounter is a reverse proxy in front of the forge that counts the
// daemon's requests to its API, writes apart.
type apiCounter struct {
	*httptest.Server
	reads, writes atomic.Int64
}

func newAPICounter(tb testing.TB, target string) *apiCounter {
	u, err := neturl.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	c := &apiCounter{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/api/") {
			if req.Method == http.MethodGet || req.Method == http.MethodHead {
				c.reads.Add(1)
			} else {
				c.writes.Add(1)
			}
		}
		proxy.ServeHTTP(w, req)
	}))
	tb.Cleanup(c.Close)
	return c
}

// BenchmarkPullRequestStatus measures, through the real Gitea and its
// webhooks, the time from a pull request opened to arbor's success status
// on its head commit (p50, p99), and the forge API requests the daemon sends
// per push to an open pull request (a new commit: its status and the
// comment), writes apart.
func BenchmarkPullRequestStatus(b *testing.B) {
	p := newPRFixture(b)
	api := newAPICounter(b, p.f.URL)
	p.start(api.URL, false)
	lat := make([]time.Duration, 0, latencySamples)
	for i := range latencySamples {
		branch := fmt.Sprintf("feature/%d", i)
		sha := p.push(branch, branch, map[string]string{"n.txt": branch})
		start := time.Now()
		p.f.OpenPR(b, p.repo, branch, "main", branch)
		p.waitStatus(sha, "success", "")
		lat = append(lat, time.Since(start))
	}
	report(b, "pull request opened to success status", lat)

	sha := p.push("feature/pushes", "first", map[string]string{"n.txt": "0"})
	pr := p.f.OpenPR(b, p.repo, "feature/pushes", "main", "pushes")
	p.waitStatus(sha, "success", "")
	const pushes = 10
	r0, w0 := api.reads.Load(), api.writes.Load()
	for i := range pushes {
		sha = p.push("feature/pushes", strconv.Itoa(i), map[string]string{"n.txt": strconv.Itoa(i + 1)})
		p.waitStatus(sha, "success", "")
		p.waitComment(pr.Number, "the comment for "+sha, func(cs []forgetest.Comment) bool {
			return len(cs) == 1 && strings.Contains(cs[0].Body, sha)
		})
	}
	time.Sleep(time.Second) // reports still due land in this count too
	reads, writes := api.reads.Load()-r0, api.writes.Load()-w0
	if reads+writes == 0 {
		b.Fatal("the counting proxy saw no request: the figures below would prove nothing")
	}
	b.ReportMetric(float64(writes)/pushes, "forge-writes/push")
	b.ReportMetric(float64(reads)/pushes, "forge-reads/push")
	b.Logf("%d pushes to an open pull request: %d forge writes, %d reads", pushes, writes, reads)
}

// TestBranchEnvironmentCommentsOnItsPullRequest: an app in branches mode
// with a forge: every branch has its environment, and the one with an open
// pull request gets the status and the comment there.
func TestBranchEnvironmentCommentsOnItsPullRequest(t *testing.T) {
	p := newPRFixture(t)
	cfg := strings.Replace(p.config(p.f.URL, p.f.URL, false), "  environments: pull_requests\n  pull_requests: {labels: []}\n", "", 1)
	if strings.Contains(cfg, "pull_requests") {
		t.Fatalf("the config is still in pull_requests mode:\n%s", cfg)
	}
	p.d = startDaemon(t, newConfig(t, p.own, cfg))
	p.f.AddWebhook(t, p.repo, p.d.srv.URL+"/hooks/gitea", p.secret, "push", "pull_request")
	head := p.push("feature/c", "c", map[string]string{"c.txt": "c"})
	env := p.d.waitReadyAt(p.app, "feature/c", head, prWait)
	pr := p.f.OpenPR(t, p.repo, "feature/c", "main", "feature c")
	p.waitComment(pr.Number, "the branch environment's comment on its pull request", func(cs []forgetest.Comment) bool {
		return len(cs) == 1 && strings.Contains(cs[0].Body, env.URLs[0].URL) && strings.Contains(cs[0].Body, "Ready")
	})
	p.waitStatus(head, "success", "")
}

// A pull request environment whose service crash-loops (kwok's crash-loop
// stage): the pending commit status names the service, the reason and the
// exit code while the daemon waits for it. (After the wait times out the
// workflow goes on, the task's failure a warning: the environment is Ready
// and the success status still names the problem.)
func TestForgeStatusNamesTheProblem(t *testing.T) {
	p := newPRFixture(t)
	p.start(p.f.URL, false)
	sha := p.push("feature/crash", "crash", map[string]string{".release.yaml": "services:\n- name: web\n  image: arbor.test/crash-loop:1\n"})
	p.f.OpenPR(t, p.repo, "feature/crash", "main", "crash")
	s := p.waitStatus(sha, "pending", "service web: CrashLoopBackOff (exit code 3)")
	t.Logf("status: %s", s.Description)
}
