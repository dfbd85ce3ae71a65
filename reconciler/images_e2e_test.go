package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/internal/buildkittest"
	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/reconciler"
)

// twoBuilt is a template with two services built from the repository, each
// from its own context directory.
const twoBuilt = `services:
- name: api
  build: {context: api}
- name: web
  build: {context: web, args: {GREETING: hello}}
`

// dockerfile copies the context's one file into an image FROM scratch:
// nothing to pull, no RUN step.
const dockerfile = "FROM scratch\nARG GREETING\nCOPY hello.txt /hello.txt\n"

// images reads the image of every Deployment of ns, by name.
func deploymentImages(t *testing.T, ns string) map[string]string {
	t.Helper()
	deps, err := testcluster.Clientset(t).AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range deps.Items {
		out[d.Name] = d.Spec.Template.Spec.Containers[0].Image
	}
	return out
}

func imagesCount(t testing.TB, d *daemon, app, result string) float64 {
	t.Helper()
	v, _ := gather(t, d.reg, "arbor_images_total", func(l map[string]string) bool { return l["app"] == app && l["result"] == result })
	return v
}

// TestDaemonBuildsImages: in build mode the daemon builds each built
// service's image with the real buildkitd, pushes it to the real registry
// and rolls the Deployments out pinned by digest; a push that changes one
// service's context builds that one image; a second branch off the same
// commit builds none; a broken Dockerfile keeps the running environment and
// names the failing step in status.
func TestDaemonBuildsImages(t *testing.T) {
	reg := buildkittest.Registry(t)
	prefix := reg + "/" + buildkittest.Repository(t)
	addr := buildkittest.Addr(t)
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, twoBuilt)
	c1 := r.commit("two services", map[string]string{
		"api/Dockerfile": dockerfile, "api/hello.txt": "api v1\n",
		"web/Dockerfile": dockerfile, "web/hello.txt": "web v1\n",
	})
	d := startDaemon(t, newConfig(t, own, "apps:\n- {name: "+app+", repo: "+r.dir+", poll_interval: 1s}\n"+
		"defaults: {domain: test.local}\n"+
		"images: {build: buildkit, registry: "+prefix+", plain_http: true, buildkit_addr: '"+addr+"', allowed_base_registries: ["+reg+"]}\n"))

	env := d.waitReadyAt(app, "main", c1, 5*time.Minute)
	first := deploymentImages(t, env.Namespace)
	for _, svc := range []string{"api", "web"} {
		img := first[svc]
		if !strings.HasPrefix(img, prefix+"/"+app+"/"+svc+"@sha256:") {
			t.Errorf("%s runs %q: want the built image under %s, pinned by digest", svc, img, prefix)
		}
	}
	if len(env.Images) != 2 || !env.Images[0].Built || env.Images[0].Pinned != first["api"] ||
		!strings.HasPrefix(env.Images[0].Tag, prefix+"/"+app+"/api:arbor-") {
		t.Errorf("status images: %+v; want both built, api's pin what runs, tagged by its content key", env.Images)
	}
	if got := imagesCount(t, d, app, "built"); got != 2 {
		t.Fatalf("arbor_images_total{result=built} = %v after the first commit; want 2", got)
	}
	if len(env.Images) == 2 && !strings.Contains(strings.Join(env.Images[1].Log, "\n"), "COPY hello.txt") {
		t.Errorf("web's build log %q: want its steps", env.Images[1].Log)
	}

	var logs strings.Builder
	if err := d.rec.Logs(context.Background(), app, "main", reconciler.LogRequest{Kind: "build"}, &logs); err != nil ||
		!strings.Contains(logs.String(), "==> services.web: built "+first["web"]) || !strings.Contains(logs.String(), "COPY hello.txt") {
		t.Errorf("build logs: %v\n%s", err, logs.String())
	}

	// Only api's context changes: one build; web's image is found.
	c2 := r.commit("api v2", map[string]string{"api/hello.txt": "api v2\n"})
	env = d.waitReadyAt(app, "main", c2, 5*time.Minute)
	second := deploymentImages(t, env.Namespace)
	if got := imagesCount(t, d, app, "built"); got != 3 {
		t.Errorf("arbor_images_total{result=built} = %v after a push touching api only; want 3 (one more build)", got)
	}
	if second["web"] != first["web"] || second["api"] == first["api"] {
		t.Errorf("after api's change: api %q → %q, web %q → %q; want api rebuilt, web the same image", first["api"], second["api"], first["web"], second["web"])
	}

	// A second branch off the same commit: nothing to build.
	r.on("feature")
	featureEnv := d.waitReadyAt(app, "feature", c2, 5*time.Minute)
	if got := imagesCount(t, d, app, "built"); got != 3 {
		t.Errorf("arbor_images_total{result=built} = %v after a branch off the same commit; want still 3", got)
	}
	if fi := deploymentImages(t, featureEnv.Namespace); fi["api"] != second["api"] || fi["web"] != second["web"] {
		t.Errorf("feature runs %v; want main's images %v", fi, second)
	}

	// A broken Dockerfile: the build fails at its COPY; what runs stays.
	bad := r.commit("broken", map[string]string{"web/Dockerfile": "FROM scratch\nCOPY missing.txt /missing.txt\n"})
	failed := d.waitPhase(app, "feature", reconciler.PhaseFailed, 5*time.Minute)
	if !strings.Contains(failed.LastError, "COPY missing.txt") || !strings.Contains(failed.LastError, short(bad)) {
		t.Errorf("lastError %q: want the failing step (COPY missing.txt) and the commit %s", failed.LastError, short(bad))
	}
	var web *reconciler.ImageStatus
	for i := range failed.Images {
		if failed.Images[i].Service == "web" {
			web = &failed.Images[i]
		}
	}
	if web == nil || !strings.Contains(web.Step, "COPY missing.txt") || web.Error == "" {
		t.Errorf("status images %+v: want web's failing step", failed.Images)
	}
	if failed.Commit != c2 {
		t.Errorf("status commit %s; want %s, still running", failed.Commit, c2)
	}
	if fi := deploymentImages(t, featureEnv.Namespace); fi["web"] != second["web"] {
		t.Errorf("after the failed build web runs %q; want the previous image %q", fi["web"], second["web"])
	}
	if got := imagesCount(t, d, app, "failed"); got < 1 {
		t.Errorf("arbor_images_total{result=failed} = %v; want the failure counted", got)
	}

	// A base image from a registry the config does not allow: refused
	// before anything is sent to BuildKit (no pull is tried), named by its
	// file and line; what runs stays.
	r.commit("a foreign base", map[string]string{"web/Dockerfile": "FROM 198.51.100.7:5000/evil/base\nCOPY hello.txt /\n"})
	var refused *reconciler.EnvironmentStatus
	eventually(t, 5*time.Minute, "the foreign base refused", func() bool {
		refused = d.env(app, "feature")
		return refused != nil && refused.Phase == reconciler.PhaseFailed && strings.Contains(refused.LastError, "198.51.100.7:5000/evil/base")
	})
	if !strings.Contains(refused.LastError, "web/Dockerfile:1") {
		t.Errorf("lastError %q: want the Dockerfile's file and line", refused.LastError)
	}
	if fi := deploymentImages(t, featureEnv.Namespace); fi["web"] != second["web"] {
		t.Errorf("after the refused build web runs %q; want the previous image %q", fi["web"], second["web"])
	}
}

func short(commit string) string { return commit[:12] }

// relay forwards requests to a URL set later: a registry's notification
// endpoint must be known before the daemon it notifies is started.
type relay struct {
	*httptest.Server
	target atomic.Pointer[url.URL]
}

func newRelay(t testing.TB) *relay {
	rl := &relay{}
	rl.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u := rl.target.Load()
		if u == nil {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, req)
	}))
	t.Cleanup(rl.Close)
	return rl
}

func (rl *relay) to(t testing.TB, raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	rl.target.Store(u)
}

// externalConfig is a daemon config in external mode against registry reg.
func externalConfig(app, repoDir, reg, extra string) string {
	return "apps:\n- {name: " + app + ", repo: " + repoDir + ", poll_interval: 1s}\n" +
		"defaults: {domain: test.local}\n" +
		"images: {build: external, registry: " + reg + "/ci, plain_http: true" + extra + "}\n"
}

const ciBuilt = `services:
- name: web
  has_repo: true
  ports:
  - {type: node_port, port: 80}
`

// TestDaemonWaitsForCIImage: in external mode a push waits (`Waiting for
// image REF`) until CI's image is in the registry; the registry's
// notification rolls it out at once (the poll interval is a minute, longer
// than the test waits), pinned by digest.
func TestDaemonWaitsForCIImage(t *testing.T) {
	rl := newRelay(t)
	token := "notify-" + randHex(8)
	reg := buildkittest.StartRegistry(t, buildkittest.RegistryConfig{NotifyURL: rl.URL + "/hooks/registry", NotifyToken: token})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, ciBuilt)
	c1 := r.commit("head", nil)
	d := startDaemon(t, newConfig(t, own, externalConfig(app, r.dir, reg,
		", poll_interval: 1m, max_poll_interval: 1m, wait_timeout: 10m, notification_token_file: "+tokenFile)))
	rl.to(t, d.srv.URL)

	ref := reg + "/ci/" + app + "/web:" + c1
	waiting := d.waitPhase(app, "main", reconciler.PhaseWaiting, time.Minute)
	if waiting.Message != "Waiting for image "+ref {
		t.Fatalf("message %q; want %q", waiting.Message, "Waiting for image "+ref)
	}
	pinned := reg + "/ci/" + app + "/web@" + pushRandom(t, ref)
	env := d.waitReadyAt(app, "main", c1, 30*time.Second)
	if img := deploymentImages(t, env.Namespace)["web"]; img != pinned {
		t.Errorf("web runs %q; want %q", img, pinned)
	}
	if got := imagesCount(t, d, app, "found"); got != 1 {
		t.Errorf("arbor_images_total{result=found} = %v; want 1", got)
	}
}

// TestDaemonPollsForCIImageUntilItsDeadline: without notifications the
// daemon finds CI's image by polling; an image never pushed ends in Failed
// at the wait's deadline, with the reason.
func TestDaemonPollsForCIImageUntilItsDeadline(t *testing.T) {
	reg := buildkittest.StartRegistry(t, buildkittest.RegistryConfig{})
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, ciBuilt)
	c1 := r.commit("head", nil)
	d := startDaemon(t, newConfig(t, own, externalConfig(app, r.dir, reg,
		", poll_interval: 200ms, max_poll_interval: 500ms, wait_timeout: 6s")))

	ref := reg + "/ci/" + app + "/web:" + c1
	d.waitPhase(app, "main", reconciler.PhaseWaiting, time.Minute)
	pinned := reg + "/ci/" + app + "/web@" + pushRandom(t, ref)
	env := d.waitReadyAt(app, "main", c1, 30*time.Second)
	if img := deploymentImages(t, env.Namespace)["web"]; img != pinned {
		t.Errorf("web runs %q; want %q", img, pinned)
	}

	c2 := r.commit("never built", map[string]string{"README": "x\n"})
	failed := d.waitPhase(app, "main", reconciler.PhaseFailed, time.Minute)
	if want := "did not appear in the registry within 6s"; !strings.Contains(failed.LastError, want) || !strings.Contains(failed.LastError, c2) {
		t.Errorf("lastError %q: want %q, naming the image of %s", failed.LastError, want, c2)
	}
	if img := deploymentImages(t, env.Namespace)["web"]; img != pinned {
		t.Errorf("after the deadline web runs %q; want the previous image %q", img, pinned)
	}
	if got := imagesCount(t, d, app, "timeout"); got != 1 {
		t.Errorf("arbor_images_total{result=timeout} = %v; want 1", got)
	}
}

// TestDaemonEndsTheImageWaitOfABranchGone: a new branch that waits for
// its image and is deleted before it was ever deployed leaves no wait
// behind: it does not run on to its deadline (no timeout is counted for
// it), nor stays in memory. A second branch, made after the first is gone
// and waiting as long, times out after the first would have.
func TestDaemonEndsTheImageWaitOfABranchGone(t *testing.T) {
	reg := buildkittest.StartRegistry(t, buildkittest.RegistryConfig{})
	cs := testcluster.Clientset(t)
	own := testcluster.Namespace(t, cs)
	app := appName(t)
	r := newRepo(t, ciBuilt)
	c1 := r.commit("head", nil)
	pushRandom(t, reg+"/ci/"+app+"/web:"+c1)
	d := startDaemon(t, newConfig(t, own, externalConfig(app, r.dir, reg,
		", poll_interval: 200ms, max_poll_interval: 500ms, wait_timeout: 6s")))
	d.waitReadyAt(app, "main", c1, time.Minute)

	// Each branch appears at its own commit: never seen at main's, deployed.
	branchAtNewCommit := func(branch string) {
		git(t, r.dir, "checkout", "-q", "--detach", "main")
		r.commit("never built", map[string]string{"README": branch + "\n"})
		git(t, r.dir, "branch", branch)
		git(t, r.dir, "checkout", "-q", "main")
	}
	branchAtNewCommit("gone")
	d.waitPhase(app, "gone", reconciler.PhaseWaiting, time.Minute)
	r.deleteBranch("gone")
	eventually(t, time.Minute, "the deleted branch to leave status", func() bool { return d.env(app, "gone") == nil })

	branchAtNewCommit("later")
	d.waitPhase(app, "later", reconciler.PhaseFailed, time.Minute)
	if got := imagesCount(t, d, app, "timeout"); got != 1 {
		t.Errorf("arbor_images_total{result=timeout} = %v; want 1 (branch later's): the wait of the deleted branch ran on", got)
	}

	// A deployed branch waiting for a new commit's image, then deleted:
	// its wait ends as its deletion begins, not after the teardown (which
	// waits for the namespace to go).
	r.on("deployed")
	d.waitReadyAt(app, "deployed", c1, time.Minute)
	r.commit("never built", map[string]string{"README": "deployed\n"})
	d.waitPhase(app, "deployed", reconciler.PhaseWaiting, time.Minute)
	r.deleteBranch("deployed")
	eventually(t, time.Minute, "the deleted environment to leave status", func() bool { return d.env(app, "deployed") == nil })
	if got := imagesCount(t, d, app, "timeout"); got != 1 {
		t.Errorf("arbor_images_total{result=timeout} = %v; want 1 (branch later's): the wait of the deleted environment ran on through its teardown", got)
	}
}

// pushRandom pushes a fresh image to ref and returns its digest.
func pushRandom(t testing.TB, ref string) string {
	t.Helper()
	img := buildkittest.RandomImage(t)
	buildkittest.Push(t, ref, img)
	dg, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dg.String()
}

// BenchmarkImagePushedToRolledOut measures, in external mode, the time from
// CI's push of a commit's image to the environment Ready at that commit
// with the image pinned: the registry's notification wakes the wait (the
// poll interval is a minute), the daemon applies and waits for readiness.
func BenchmarkImagePushedToRolledOut(b *testing.B) {
	rl := newRelay(b)
	token := "notify-" + randHex(8)
	reg := buildkittest.StartRegistry(b, buildkittest.RegistryConfig{NotifyURL: rl.URL + "/hooks/registry", NotifyToken: token})
	tokenFile := filepath.Join(b.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		b.Fatal(err)
	}
	cs := testcluster.Clientset(b)
	own := testcluster.Namespace(b, cs)
	app := appName(b)
	r := newRepo(b, ciBuilt)
	d := startDaemon(b, newConfig(b, own, externalConfig(app, r.dir, reg,
		", poll_interval: 1m, max_poll_interval: 1m, notification_token_file: "+tokenFile)))
	rl.to(b, d.srv.URL)
	lat := make([]time.Duration, 0, latencySamples)
	for i := range latencySamples + 1 {
		c := r.commit(fmt.Sprintf("change %d", i), map[string]string{"f.txt": strconv.Itoa(i)})
		waitWaitingFor(b, d, app, "main", c)
		ref := reg + "/ci/" + app + "/web:" + c
		start := time.Now()
		pushRandom(b, ref)
		waitInMemory(b, d, app, "main", c)
		if i > 0 { // the first creates the namespace
			lat = append(lat, time.Since(start))
		}
	}
	if got := imagesCount(b, d, app, "found"); got != latencySamples+1 {
		b.Fatalf("arbor_images_total{result=found} = %v; want %d, one per commit", got, latencySamples+1)
	}
	report(b, "image pushed to environment Ready with it", lat)
}

// waitWaitingFor waits until app@branch waits for the images of commit.
func waitWaitingFor(b *testing.B, d *daemon, app, branch, commit string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range d.rec.Environments(app) {
			if e.Branch == branch && e.TargetCommit == commit && e.Phase == reconciler.PhaseWaiting {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("%s@%s not waiting for the images of %s", app, branch, commit)
}
