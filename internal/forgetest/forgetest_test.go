package forgetest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/arbordev/arbor/internal/gittest"
)

// deliveryWait bounds how long a test waits for Gitea's webhook queue; it is not a
// performance bound, only what keeps a lost delivery from hanging the test.
const deliveryWait = 2 * time.Minute

// TestGiteaEndToEnd drives the real Gitea through every part of the helper: a
// repository, a push of two branches, the signed push webhooks, a pull request,
// a label, a commit status and a comment, each read back from the forge.
func TestGiteaEndToEnd(t *testing.T) {
	f := Gitea(t)
	repo := f.CreateRepo(t, t.Name())
	recv := NewReceiver(t)
	const secret = "s3cret-for-the-test"
	f.AddWebhook(t, repo, recv.URL, secret, "push", "pull_request")

	dir := t.TempDir()
	gittest.Run(t, dir, "init", "-q", "-b", "main")
	commit(t, dir, "README.md", "hello\n")
	mainSHA := gittest.Run(t, dir, "rev-parse", "HEAD")
	gittest.Run(t, dir, "checkout", "-q", "-b", "feature")
	commit(t, dir, "feature.txt", "a feature\n")
	featureSHA := gittest.Run(t, dir, "rev-parse", "HEAD")
	f.Push(t, dir, repo, "main", "feature")

	for branch, sha := range map[string]string{"main": mainSHA, "feature": featureSHA} {
		d := recv.Next(t, "push", deliveryWait, func(d Delivery) bool {
			var p struct {
				Ref string `json:"ref"`
			}
			return json.Unmarshal(d.Body, &p) == nil && p.Ref == "refs/heads/"+branch
		})
		if !validSignature(d.Body, secret, d.Header.Get("X-Hub-Signature-256")) {
			t.Errorf("push of %s: X-Hub-Signature-256 %q does not sign the body with the secret", branch, d.Header.Get("X-Hub-Signature-256"))
		}
		if validSignature(d.Body, secret+"x", d.Header.Get("X-Hub-Signature-256")) {
			t.Errorf("push of %s: the signature also verifies with another secret", branch)
		}
		var p struct {
			After      string `json:"after"`
			Repository struct {
				FullName string `json:"full_name"`
			} `json:"repository"`
		}
		if err := json.Unmarshal(d.Body, &p); err != nil {
			t.Fatalf("push of %s: payload: %v", branch, err)
		}
		if p.After != sha || p.Repository.FullName != repo.FullName {
			t.Errorf("push of %s: payload says %s at %s, want %s at %s", branch, p.Repository.FullName, p.After, repo.FullName, sha)
		}
	}

	opened := f.OpenPR(t, repo, "feature", "main", "Add a feature")
	pr := f.PR(t, repo, opened.Number)
	if pr.Number == 0 || pr.State != "open" || pr.Head.Ref != "feature" || pr.Head.SHA != featureSHA || pr.Base.Ref != "main" || pr.Title != "Add a feature" {
		t.Errorf("pull request read back: %+v; want #%d open, feature@%s into main", pr, opened.Number, featureSHA)
	}
	d := recv.Next(t, "pull_request", deliveryWait, nil)
	var event struct {
		Action string `json:"action"`
		Number int64  `json:"number"`
	}
	if err := json.Unmarshal(d.Body, &event); err != nil || event.Action != "opened" || event.Number != pr.Number {
		t.Errorf("pull_request webhook: %+v (%v), want opened #%d", event, err, pr.Number)
	}

	label := f.CreateLabel(t, repo, "preview")
	f.AddLabels(t, repo, pr.Number, label)
	if got := f.PR(t, repo, pr.Number).Labels; len(got) != 1 || got[0].Name != "preview" {
		t.Errorf("labels read back: %+v, want [preview]", got)
	}

	want := Status{State: "success", Context: "arbor/web", TargetURL: "http://web.feature.example.test/", Description: "environment ready"}
	f.SetStatus(t, repo, featureSHA, want)
	got := f.Statuses(t, repo, featureSHA)
	if len(got) == 1 {
		if got[0].ID == 0 {
			t.Errorf("the status read back has no id")
		}
		got[0].ID = 0 // Gitea's, not part of what was set
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("statuses read back: %+v, want [%+v]", got, want)
	}

	f.AddComment(t, repo, pr.Number, "environment: http://web.feature.example.test/")
	if got := f.Comments(t, repo, pr.Number); len(got) != 1 || got[0].Body != "environment: http://web.feature.example.test/" || got[0].User.Login != f.User {
		t.Errorf("comments read back: %+v", got)
	}

	if got := f.SetPRState(t, repo, pr.Number, "closed"); got.State != "closed" {
		t.Errorf("closed pull request reads %q", got.State)
	}
	if got := f.PR(t, repo, pr.Number); got.State != "closed" {
		t.Errorf("closed pull request read back: %q", got.State)
	}
}

// validSignature checks a GitHub-style "sha256=<hex HMAC of the body>" header.
func validSignature(body []byte, secret, header string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal([]byte(header), []byte("sha256="+hex.EncodeToString(mac.Sum(nil))))
}

func commit(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Run(t, dir, "add", name)
	gittest.Run(t, dir, "commit", "-q", "-m", "add "+name)
}
