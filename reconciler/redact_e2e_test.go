package reconciler_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/testcluster"
)

// lockedBuffer collects log lines written from the daemon's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRepositoryUserinfoNeverShown runs the daemon on three repositories whose
// addresses carry credentials — a token as the user, a user and password, an
// ssh user — that the git server refuses, and checks every output the daemon
// has: the status API, its logs, /metrics, and the listing errors that quote
// go-git's.
func TestRepositoryUserinfoNeverShown(t *testing.T) {
	ns := testcluster.Namespace(t, testcluster.Clientset(t))
	srv := newGitServer(t)
	r := newRepo(t, "services: []\n")
	srv.serve(r, "shop")
	host := strings.TrimPrefix(srv.URL, "http://")
	keyDir := t.TempDir()
	key, knownHosts := filepath.Join(keyDir, "id"), filepath.Join(keyDir, "known_hosts")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	if err := os.WriteFile(knownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"ghpTOKENAAAA1111", "PASSWORDBBBB2222", "SSHUSERCCCC3333"}
	cfg := newConfig(t, ns, `apps:
- name: `+appName(t)+`-token
  repo: http://`+secrets[0]+`@`+host+`/shop.git
  poll_interval: 1s
- name: `+appName(t)+`-userpass
  repo: http://bob:`+secrets[1]+`@`+host+`/shop.git
  poll_interval: 1s
- name: `+appName(t)+`-ssh
  repo: ssh://`+secrets[2]+`@127.0.0.1:1/shop.git
  poll_interval: 1s
  auth: {ssh_key_file: `+key+`, known_hosts_file: `+knownHosts+`}
`)
	logs := &lockedBuffer{}
	d := startDaemonLog(t, cfg, slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), nil)))

	eventually(t, 60*time.Second, "a listing error for every app", func() bool {
		for _, a := range d.apps() {
			if a.ListingError == "" {
				return false
			}
		}
		return true
	})
	api := getBody(t, d.srv.URL+"/api/v1/apps")
	metrics := getBody(t, d.srv.URL+"/metrics")
	outputs := map[string]string{"status API": api, "logs": logs.String(), "metrics": metrics}
	for _, a := range d.apps() {
		outputs["listing error of "+a.Name] = a.ListingError
	}
	for what, out := range outputs {
		if out == "" {
			t.Errorf("%s: empty, so it proves nothing", what)
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %s:\n%s", what, s, out)
			}
		}
	}
	if !strings.Contains(api, host+"/shop.git") {
		t.Errorf("the status API does not show the repository at all:\n%s", api)
	}
	if !strings.Contains(logs.String(), "branch listing failed") {
		t.Errorf("no listing failure was logged, so the log check proves nothing:\n%s", logs.String())
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}
