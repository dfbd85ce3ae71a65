package images

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/arbordev/arbor/internal/buildkittest"
)

// waitFor runs w.Wait(ref) in the background once the registry is up and
// returns the channel its outcome arrives on, after the wait has looked once.
func waitFor(t *testing.T, w *Waiter, ref string) <-chan waitOutcome {
	t.Helper()
	out := make(chan waitOutcome, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	go func() {
		res, err := w.Wait(ctx, ref)
		out <- waitOutcome{res, err}
	}()
	// The wait is registered before its first lookup; give the lookup time to
	// miss, so that what follows is a push after the wait began.
	deadline := time.Now().Add(10 * time.Second)
	for w.waiters(ref) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the wait never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	return out
}

type waitOutcome struct {
	res Result
	err error
}

func (w *Waiter) waiters(ref string) int {
	r, _ := w.reg.parse(ref)
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiting[r.Context().RepositoryStr()])
}

func pushedDigest(t *testing.T, ref string, opts ...remote.Option) string {
	t.Helper()
	img := buildkittest.RandomImage(t)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	buildkittest.Push(t, ref, img, opts...)
	return d.String()
}

func TestWaiterWokenByNotification(t *testing.T) {
	const token = "notify-token"
	// Polling is an hour apart: only the registry's notification can end this wait soon.
	w := NewWaiter(WaiterOptions{PlainHTTP: true, MinPoll: time.Hour, MaxPoll: time.Hour, NotificationToken: token})
	hook := httptest.NewServer(w.NotificationHandler())
	defer hook.Close()
	reg := buildkittest.StartRegistry(t, buildkittest.RegistryConfig{NotifyURL: hook.URL + "/hooks/registry", NotifyToken: token})
	ref := reg + "/shop/web:0123abc"

	done := waitFor(t, w, ref)
	pushed := time.Now()
	want := pushedDigest(t, ref)
	select {
	case o := <-done:
		if o.err != nil || o.res.Digest != want || o.res.Ref != reg+"/shop/web@"+want {
			t.Fatalf("wait: %+v, %v; want digest %s", o.res, o.err, want)
		}
		t.Logf("pushed → found: %s", time.Since(pushed))
	case <-time.After(30 * time.Second):
		t.Fatal("the registry's notification did not end the wait")
	}
}

func TestWaiterPolls(t *testing.T) {
	w := NewWaiter(WaiterOptions{PlainHTTP: true, MinPoll: 50 * time.Millisecond, MaxPoll: 200 * time.Millisecond})
	reg := buildkittest.StartRegistry(t, buildkittest.RegistryConfig{})
	ref := reg + "/shop/api:feed"
	done := waitFor(t, w, ref)
	want := pushedDigest(t, ref)
	select {
	case o := <-done:
		if o.err != nil || o.res.Digest != want {
			t.Fatalf("wait: %+v, %v; want digest %s", o.res, o.err, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("polling did not find the pushed image")
	}
}

func TestWaiterDeadline(t *testing.T) {
	reg := buildkittest.StartRegistry(t, buildkittest.RegistryConfig{})
	w := NewWaiter(WaiterOptions{PlainHTTP: true, Timeout: 700 * time.Millisecond, MinPoll: 50 * time.Millisecond})
	_, err := w.Wait(context.Background(), reg+"/shop/never:pushed")
	var te *WaitTimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "shop/never:pushed did not appear in the registry within 700ms") {
		t.Fatalf("error %v, want the deadline", err)
	}
}

// TestWaiterRegistryNeverAnswers: a registry that takes each request and
// never answers ends the wait at its deadline, with the timeout error, not
// later and not with a bare context error.
func TestWaiterRegistryNeverAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	w := NewWaiter(WaiterOptions{PlainHTTP: true, Timeout: 700 * time.Millisecond, MinPoll: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := w.Wait(ctx, host+"/shop/web:abc")
	var te *WaitTimeoutError
	if !errors.As(err, &te) || ctx.Err() != nil {
		t.Fatalf("error %v (test context: %v), want the wait's own deadline", err, ctx.Err())
	}
}

// TestWaiterUsesDockerConfigCredentials waits on a registry that wants a
// login, with the credentials of a docker-config Secret; without them the
// deadline names the registry's refusal, and never the password.
func TestWaiterUsesDockerConfigCredentials(t *testing.T) {
	const user, pass = "ci", "s3cret-pull-password"
	reg, config := htpasswdRegistry(t, user, pass)
	ref := reg + "/shop/private:v1"
	want := pushedDigest(t, ref, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))

	creds, err := ParseDockerConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewWaiter(WaiterOptions{PlainHTTP: true, Credentials: creds, Timeout: 10 * time.Second}).Wait(context.Background(), ref)
	if err != nil || res.Digest != want {
		t.Fatalf("with credentials: %+v, %v", res, err)
	}

	wrong, _ := ParseDockerConfig([]byte(fmt.Sprintf(`{"auths":{%q:{"username":%q,"password":"wrong-password"}}}`, reg, user)))
	_, err = NewWaiter(WaiterOptions{PlainHTTP: true, Credentials: wrong, Timeout: 500 * time.Millisecond, MinPoll: 100 * time.Millisecond}).Wait(context.Background(), ref)
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized") || strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("with a wrong password: %v; want the registry's refusal, without the password", err)
	}
}

func TestNotificationHandlerChecks(t *testing.T) {
	w := NewWaiter(WaiterOptions{NotificationToken: "tok"})
	wake := w.register("shop/web")
	push := `{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.layer.v1.tar","repository":"shop/web"}},` +
		`{"action":"pull","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"shop/web","tag":"x"}}]}`
	manifest := `{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"shop/web","tag":"x"}}]}`
	cases := []struct {
		name, method, auth, ctype, body string
		status                          int
		woken                           bool
	}{
		{"wrong method", http.MethodGet, "Bearer tok", NotificationMediaType, manifest, 405, false},
		{"no token", http.MethodPost, "", NotificationMediaType, manifest, 401, false},
		{"wrong token", http.MethodPost, "Bearer nope", NotificationMediaType, manifest, 401, false},
		{"wrong media type", http.MethodPost, "Bearer tok", "application/json", manifest, 415, false},
		{"not json", http.MethodPost, "Bearer tok", NotificationMediaType, "{", 400, false},
		{"too large", http.MethodPost, "Bearer tok", NotificationMediaType, `{"events":[` + strings.Repeat(" ", MaxNotificationSize) + `]}`, 413, false},
		{"blob push and a pull", http.MethodPost, "Bearer tok", NotificationMediaType, push, 200, false},
		{"manifest push", http.MethodPost, "Bearer tok", NotificationMediaType + "; charset=utf-8", manifest, 200, true},
		{"manifest push, v2 envelope", http.MethodPost, "Bearer tok", NotificationMediaTypeV2, manifest, 200, true},
	}
	h := w.NotificationHandler()
	for _, tc := range cases {
		req := httptest.NewRequest(tc.method, "/hooks/registry", strings.NewReader(tc.body))
		req.Header.Set("Authorization", tc.auth)
		req.Header.Set("Content-Type", tc.ctype)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		woken := false
		select {
		case <-wake:
			woken = true
		default:
		}
		if rec.Code != tc.status || woken != tc.woken {
			t.Errorf("%s: status %d woken %v, want %d %v", tc.name, rec.Code, woken, tc.status, tc.woken)
		}
	}
	// Without a configured token nothing is accepted.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/hooks/registry", strings.NewReader(manifest))
	req.Header.Set("Content-Type", NotificationMediaType)
	req.Header.Set("Authorization", "Bearer ")
	NewWaiter(WaiterOptions{}).NotificationHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("no token configured: status %d, want 401", rec.Code)
	}
}

func TestParseDockerConfig(t *testing.T) {
	good := `{"auths":{"https://index.docker.io/v1/":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("u:p")) + `"},"ghcr.io":{"username":"a","password":"b"}}}`
	c, err := ParseDockerConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.lookup("registry-1.docker.io"); a.Username != "u" || a.Password != "p" {
		t.Errorf("docker hub: %+v", a)
	}
	if a := c.lookup("ghcr.io"); a.Username != "a" || a.Password != "b" {
		t.Errorf("ghcr.io: %+v", a)
	}
	for _, bad := range []string{`[]`, `{"auths":{"x":{"auth":"%%%"}}}`, `{"auths":{"x":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("nocolon-secret")) + `"}}}`} {
		_, err := ParseDockerConfig([]byte(bad))
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error %v, want one that quotes nothing", bad, err)
		}
	}
}

// htpasswdRegistry starts a registry that wants user:pass and returns its
// host and the docker-config bytes of that login.
func htpasswdRegistry(t *testing.T, user, pass string) (string, []byte) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := buildkittest.StartRegistry(t, buildkittest.RegistryConfig{Htpasswd: htpasswd})
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return reg, []byte(fmt.Sprintf(`{"auths":{"http://%s":{"auth":%q}}}`, reg, auth))
}

// BenchmarkNotifiedWaitLatency reports how long after a push a waiting
// Waiter returns the image, woken by the registry's notification (polling
// is an hour apart): the image-pushed → found part of external mode's
// pushed → rolled-out latency (aim: p50 ≤ 1 s for the whole).
func BenchmarkNotifiedWaitLatency(b *testing.B) {
	const token = "bench-token"
	w := NewWaiter(WaiterOptions{PlainHTTP: true, MinPoll: time.Hour, MaxPoll: time.Hour, NotificationToken: token})
	hook := httptest.NewServer(w.NotificationHandler())
	defer hook.Close()
	reg := buildkittest.StartRegistry(b, buildkittest.RegistryConfig{NotifyURL: hook.URL, NotifyToken: token})
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		ref := fmt.Sprintf("%s/bench/svc:c%d", reg, i)
		done := make(chan error, 1)
		go func() { _, err := w.Wait(context.Background(), ref); done <- err }()
		for w.waiters(ref) == 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // let the first lookup miss
		img := buildkittest.RandomImage(b)
		b.StopTimer()
		buildkittest.Push(b, ref, img)
		pushed := time.Now()
		b.StartTimer()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(pushed))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
}
