package forge_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/arbordev/arbor/forge"
)

const hookSecret = "hook-secret"

// GitHub's documented pull_request payload, cut to the fields around those arbor reads.
const ghPullRequest = `{"action":"%ACTION%","number":5,"pull_request":{"number":5,"state":"open","draft":false,"merged":%MERGED%,
 "labels":[{"id":1,"name":"preview"}],"head":{"ref":"feature","sha":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","repo":{"id":%HEADREPO%,"full_name":"acme/shop"}},
 "base":{"ref":"main","sha":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","repo":{"id":1,"full_name":"acme/shop"}}},
 "repository":{"id":1,"full_name":"acme/shop"},"sender":{"login":"dev"}}`

func ghPR(action string, merged bool, headRepo string) []byte {
	m := "false"
	if merged {
		m = "true"
	}
	return []byte(strings.NewReplacer("%ACTION%", action, "%MERGED%", m, "%HEADREPO%", headRepo).Replace(ghPullRequest))
}

// GitLab's documented Merge Request Hook payload, cut likewise.
const glMergeRequest = `{"object_kind":"merge_request","event_type":"merge_request","user":{"username":"dev"},
 "project":{"id":1,"path_with_namespace":"acme/web/shop"},
 "object_attributes":{"iid":7,"action":"%ACTION%","state":"opened","source_branch":"feature","target_branch":"main",
  "source_project_id":%SOURCE%,"target_project_id":1,"draft":false,"work_in_progress":false%OLDREV%,
  "last_commit":{"id":"cccccccccccccccccccccccccccccccccccccccc"}},
 "labels":[{"id":1,"title":"preview"}]%CHANGES%}`

func glMR(action, source, oldrev, changes string) []byte {
	return []byte(strings.NewReplacer("%ACTION%", action, "%SOURCE%", source, "%OLDREV%", oldrev, "%CHANGES%", changes).Replace(glMergeRequest))
}

func signedRequest(kind forge.Type, event string, body []byte, secret string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, "http://arbor.test/hooks", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	switch kind {
	case forge.GitHub:
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-Hub-Signature-256", "sha256="+forge.Sign(body, []byte(secret)))
	case forge.Gitea:
		req.Header.Set("X-Gitea-Event", event)
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-Gitea-Signature", forge.Sign(body, []byte(secret)))
	case forge.GitLab:
		req.Header.Set("X-Gitlab-Event", event)
		req.Header.Set("X-Gitlab-Token", secret)
	}
	return req
}

func TestReadEvent(t *testing.T) {
	zero := strings.Repeat("0", 40)
	cases := []struct {
		name  string
		kind  forge.Type
		event string
		body  []byte
		want  forge.Event
	}{
		{"github opened", forge.GitHub, "pull_request", ghPR("opened", false, "1"),
			forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionOpened, Number: 5, HeadBranch: "feature", HeadSHA: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", SameRepo: true, Labels: []string{"preview"}}},
		{"github synchronize", forge.GitHub, "pull_request", ghPR("synchronize", false, "1"), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionSynchronize, SameRepo: true}},
		{"github reopened", forge.GitHub, "pull_request", ghPR("reopened", false, "1"), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionReopened, SameRepo: true}},
		{"github labeled", forge.GitHub, "pull_request", ghPR("labeled", false, "1"), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionLabeled, SameRepo: true}},
		{"github unlabeled", forge.GitHub, "pull_request", ghPR("unlabeled", false, "1"), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionUnlabeled, SameRepo: true}},
		{"github closed", forge.GitHub, "pull_request", ghPR("closed", false, "1"), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionClosed, SameRepo: true}},
		{"github merged", forge.GitHub, "pull_request", ghPR("closed", true, "1"), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionMerged, SameRepo: true}},
		{"github assigned", forge.GitHub, "pull_request", ghPR("assigned", false, "1"), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionOther, SameRepo: true}},
		{"github fork", forge.GitHub, "pull_request", ghPR("opened", false, "2"), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionOpened, SameRepo: false}},
		{"github deleted fork", forge.GitHub, "pull_request", ghPR("opened", false, "null"), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionOpened, SameRepo: false}},
		{"github push", forge.GitHub, "push", []byte(`{"ref":"refs/heads/feature","before":"` + zero + `","after":"dddddddddddddddddddddddddddddddddddddddd","created":true,"deleted":false,"repository":{"full_name":"acme/shop"}}`),
			forge.Event{Kind: forge.KindPush, Branch: "feature", After: "dddddddddddddddddddddddddddddddddddddddd", Repository: "acme/shop"}},
		{"github branch deleted", forge.GitHub, "push", []byte(`{"ref":"refs/heads/feature","after":"` + zero + `","deleted":true,"repository":{"full_name":"acme/shop"}}`),
			forge.Event{Kind: forge.KindPush, Branch: "feature", Deleted: true, Repository: "acme/shop"}},
		{"github tag", forge.GitHub, "push", []byte(`{"ref":"refs/tags/v1","after":"dddddddddddddddddddddddddddddddddddddddd","repository":{"full_name":"acme/shop"}}`), forge.Event{Kind: forge.KindOther, Repository: "acme/shop"}},
		{"github delete event", forge.GitHub, "delete", []byte(`{"ref":"feature","ref_type":"branch","repository":{"full_name":"acme/shop"}}`), forge.Event{Kind: forge.KindPush, Branch: "feature", Deleted: true, Repository: "acme/shop"}},
		{"github ping", forge.GitHub, "ping", []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`), forge.Event{Kind: forge.KindPing}},
		{"github comment", forge.GitHub, "issue_comment", []byte(`{"action":"created"}`), forge.Event{Kind: forge.KindOther}},
		{"gitea synchronized", forge.Gitea, "pull_request", []byte(`{"action":"synchronized","number":3,"pull_request":{"number":3,"state":"open","head":{"ref":"f","sha":"e","repo_id":4},"base":{"ref":"main","repo_id":4},"labels":[]},"repository":{"full_name":"o/r"}}`),
			forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionSynchronize, Number: 3, HeadBranch: "f", HeadSHA: "e", SameRepo: true, Labels: []string{}, Repository: "o/r"}},
		{"gitea label cleared", forge.Gitea, "pull_request", []byte(`{"action":"label_cleared","number":3,"pull_request":{"number":3,"head":{"repo_id":4},"base":{"repo_id":4}}}`), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionUnlabeled, SameRepo: true}},
		{"gitea merged", forge.Gitea, "pull_request", []byte(`{"action":"closed","number":3,"pull_request":{"number":3,"merged":true,"head":{"repo_id":4},"base":{"repo_id":4}}}`), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionMerged, SameRepo: true}},
		{"gitlab open", forge.GitLab, "Merge Request Hook", glMR("open", "1", "", ""),
			forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionOpened, Number: 7, HeadBranch: "feature", HeadSHA: "cccccccccccccccccccccccccccccccccccccccc", SameRepo: true, Labels: []string{"preview"}, Repository: "acme/web/shop"}},
		{"gitlab new commits", forge.GitLab, "Merge Request Hook", glMR("update", "1", `,"oldrev":"`+zero[:39]+`1"`, ""), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionSynchronize, SameRepo: true}},
		{"gitlab label added", forge.GitLab, "Merge Request Hook", glMR("update", "1", "", `,"changes":{"labels":{"previous":[],"current":[{"title":"preview"}]}}`), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionLabeled, SameRepo: true}},
		{"gitlab label removed", forge.GitLab, "Merge Request Hook", glMR("update", "1", "", `,"changes":{"labels":{"previous":[{"title":"preview"},{"title":"db"}],"current":[{"title":"preview"}]}}`), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionUnlabeled, SameRepo: true}},
		{"gitlab title edited", forge.GitLab, "Merge Request Hook", glMR("update", "1", "", `,"changes":{"title":{"previous":"a","current":"b"}}`), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionEdited, SameRepo: true}},
		{"gitlab close", forge.GitLab, "Merge Request Hook", glMR("close", "1", "", ""), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionClosed, SameRepo: true}},
		{"gitlab merge", forge.GitLab, "Merge Request Hook", glMR("merge", "1", "", ""), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionMerged, SameRepo: true}},
		{"gitlab reopen", forge.GitLab, "Merge Request Hook", glMR("reopen", "1", "", ""), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionReopened, SameRepo: true}},
		{"gitlab approved", forge.GitLab, "Merge Request Hook", glMR("approved", "1", "", ""), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionOther, SameRepo: true}},
		{"gitlab fork", forge.GitLab, "Merge Request Hook", glMR("open", "99", "", ""), forge.Event{Kind: forge.KindPullRequest, Action: forge.ActionOpened, SameRepo: false}},
		{"gitlab push", forge.GitLab, "Push Hook", []byte(`{"object_kind":"push","ref":"refs/heads/feature","before":"` + zero + `","after":"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee","project":{"path_with_namespace":"acme/web/shop"}}`),
			forge.Event{Kind: forge.KindPush, Branch: "feature", After: "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", Repository: "acme/web/shop"}},
		{"gitlab branch deleted", forge.GitLab, "Push Hook", []byte(`{"object_kind":"push","ref":"refs/heads/feature","after":"` + zero + `","project":{"path_with_namespace":"acme/web/shop"}}`),
			forge.Event{Kind: forge.KindPush, Branch: "feature", Deleted: true, Repository: "acme/web/shop"}},
		{"gitlab pipeline", forge.GitLab, "Pipeline Hook", []byte(`{"object_kind":"pipeline"}`), forge.Event{Kind: forge.KindOther}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := forge.ReadEvent(signedRequest(c.kind, c.event, c.body, hookSecret), "", []byte(hookSecret), 0)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Forge != c.kind || ev.Kind != c.want.Kind || ev.Action != c.want.Action || ev.SameRepo != c.want.SameRepo || ev.Deleted != c.want.Deleted {
				t.Errorf("got %+v, want %+v", ev, c.want)
			}
			// Fields the case names are compared too; zero ones are not.
			for _, f := range []struct{ got, want string }{{ev.HeadBranch, c.want.HeadBranch}, {ev.HeadSHA, c.want.HeadSHA}, {ev.Branch, c.want.Branch}, {ev.After, c.want.After}, {ev.Repository, c.want.Repository}} {
				if f.want != "" && f.got != f.want {
					t.Errorf("got %+v, want %+v", ev, c.want)
				}
			}
			if (c.want.Number != 0 && ev.Number != c.want.Number) || (c.want.Labels != nil && !slices.Equal(ev.Labels, c.want.Labels)) {
				t.Errorf("got %+v, want %+v", ev, c.want)
			}
		})
	}
}

func TestReadEventRefuses(t *testing.T) {
	body := ghPR("opened", false, "1")
	resign := func(r *http.Request, h, v string) *http.Request { r.Header.Set(h, v); return r }
	drop := func(r *http.Request, h ...string) *http.Request {
		for _, k := range h {
			r.Header.Del(k)
		}
		return r
	}
	cases := []struct {
		name   string
		req    *http.Request
		kind   forge.Type
		secret string
		max    int64
		want   error
	}{
		{"github wrong secret", signedRequest(forge.GitHub, "pull_request", body, "other"), forge.GitHub, hookSecret, 0, forge.ErrUnverified},
		{"github no signature", drop(signedRequest(forge.GitHub, "pull_request", body, hookSecret), "X-Hub-Signature-256"), forge.GitHub, hookSecret, 0, forge.ErrUnverified},
		{"github sha1 only", resign(drop(signedRequest(forge.GitHub, "pull_request", body, hookSecret), "X-Hub-Signature-256"), "X-Hub-Signature", "sha1=00"), forge.GitHub, hookSecret, 0, forge.ErrUnverified},
		{"github signature without prefix", resign(signedRequest(forge.GitHub, "pull_request", body, hookSecret), "X-Hub-Signature-256", forge.Sign(body, []byte(hookSecret))), forge.GitHub, hookSecret, 0, forge.ErrUnverified},
		{"github signature not hex", resign(signedRequest(forge.GitHub, "pull_request", body, hookSecret), "X-Hub-Signature-256", "sha256=zz"), forge.GitHub, hookSecret, 0, forge.ErrUnverified},
		{"gitea wrong secret", signedRequest(forge.Gitea, "pull_request", body, "other"), forge.Gitea, hookSecret, 0, forge.ErrUnverified},
		{"gitea own header wrong, hub header right", resign(signedRequest(forge.Gitea, "pull_request", body, "other"), "X-Hub-Signature-256", "sha256="+forge.Sign(body, []byte(hookSecret))), forge.Gitea, hookSecret, 0, forge.ErrUnverified},
		{"gitlab wrong token", signedRequest(forge.GitLab, "Merge Request Hook", body, "other"), forge.GitLab, hookSecret, 0, forge.ErrUnverified},
		{"gitlab token as prefix", signedRequest(forge.GitLab, "Merge Request Hook", body, hookSecret[:4]), forge.GitLab, hookSecret, 0, forge.ErrUnverified},
		{"no secret configured", signedRequest(forge.GitHub, "pull_request", body, ""), forge.GitHub, "", 0, forge.ErrNoSecret},
		{"too large", signedRequest(forge.GitHub, "pull_request", body, hookSecret), forge.GitHub, hookSecret, int64(len(body) - 1), forge.ErrTooLarge},
		{"github headers sent as gitlab", signedRequest(forge.GitHub, "pull_request", body, hookSecret), forge.GitLab, hookSecret, 0, forge.ErrUnverified},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := forge.ReadEvent(c.req, c.kind, []byte(c.secret), c.max)
			if !errors.Is(err, c.want) {
				t.Errorf("ReadEvent: %v, want %v", err, c.want)
			}
		})
	}
	// Gitea signs with both headers; either alone verifies.
	r := drop(signedRequest(forge.Gitea, "pull_request", body, hookSecret), "X-Gitea-Signature")
	r.Header.Set("X-Hub-Signature-256", "sha256="+forge.Sign(body, []byte(hookSecret)))
	if _, err := forge.ReadEvent(r, forge.Gitea, []byte(hookSecret), 0); err != nil {
		t.Errorf("gitea delivery signed with X-Hub-Signature-256 only: %v", err)
	}
}

// TestReadEventForm reads GitHub's form-encoded deliveries, signed over the form body.
func TestReadEventForm(t *testing.T) {
	form := []byte("payload=" + url.QueryEscape(string(ghPR("opened", false, "1"))))
	r := signedRequest(forge.GitHub, "pull_request", form, hookSecret)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ev, err := forge.ReadEvent(r, forge.GitHub, []byte(hookSecret), 0)
	if err != nil || ev.Number != 5 || ev.Action != forge.ActionOpened {
		t.Errorf("form delivery: %+v, %v", ev, err)
	}
	r = signedRequest(forge.GitHub, "pull_request", []byte("nothing=here"), hookSecret)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := forge.ReadEvent(r, forge.GitHub, []byte(hookSecret), 0); err == nil {
		t.Errorf("form without payload: no error")
	}
}

func TestReadEventMalformed(t *testing.T) {
	for _, body := range []string{`not json`, `{"action":"opened"}`, `{"pull_request":[]}`, `[]`} {
		_, err := forge.ReadEvent(signedRequest(forge.GitHub, "pull_request", []byte(body), hookSecret), forge.GitHub, []byte(hookSecret), 0)
		if err == nil || errors.Is(err, forge.ErrUnverified) {
			t.Errorf("body %s: %v, want a parse error", body, err)
		}
	}
	if _, err := forge.ReadEvent(signedRequest(forge.GitLab, "Merge Request Hook", []byte(`{"object_kind":"merge_request"}`), hookSecret), forge.GitLab, []byte(hookSecret), 0); err == nil {
		t.Errorf("merge request without object_attributes: no error")
	}
}

func TestGuessType(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		h    http.Header
		want forge.Type
	}{
		{h("X-GitHub-Event", "push"), forge.GitHub},
		{h("X-GitHub-Event", "push", "X-Gitea-Event", "push"), forge.Gitea},
		{h("X-Gitlab-Event", "Push Hook"), forge.GitLab},
		{h("X-Gitlab-Token", "t"), forge.GitLab},
		{h("Content-Type", "application/json"), ""},
	}
	for _, c := range cases {
		if got, ok := forge.GuessType(c.h); got != c.want || ok != (c.want != "") {
			t.Errorf("GuessType(%v) = %q, %v; want %q", c.h, got, ok, c.want)
		}
	}
	for _, kind := range forge.Types {
		event := map[forge.Type]string{forge.GitHub: "push", forge.Gitea: "push", forge.GitLab: "Push Hook"}[kind]
		ev, err := forge.ReadEvent(signedRequest(kind, event, []byte(`{"ref":"refs/heads/a","after":"b"}`), hookSecret), "", []byte(hookSecret), 0)
		if err != nil || ev.Forge != kind || ev.Kind != forge.KindPush {
			t.Errorf("%s push read with the forge guessed: %+v, %v", kind, ev, err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "http://arbor.test/", strings.NewReader("{}"))
	if _, err := forge.ReadEvent(req, "", []byte(hookSecret), 0); err == nil {
		t.Errorf("a delivery without forge headers was read")
	}
}

// FuzzReadEvent feeds arbitrary, correctly signed bodies and event names to
// every forge's parser: no input may panic, and an accepted pull request
// event always has an action.
func FuzzReadEvent(f *testing.F) {
	f.Add(uint8(0), "pull_request", ghPR("opened", true, "1"))
	f.Add(uint8(1), "pull_request", []byte(`{"action":"label_updated","pull_request":{"head":{"repo_id":1},"base":{"repo_id":1}}}`))
	f.Add(uint8(2), "Merge Request Hook", glMR("update", "1", "", `,"changes":{"labels":{"previous":null,"current":[{"title":"x"}]}}`))
	f.Add(uint8(2), "Push Hook", []byte(`{"ref":"refs/heads/a","after":"0000"}`))
	f.Add(uint8(0), "push", []byte(`{"ref":"refs/heads/","after":""}`))
	f.Add(uint8(1), "delete", []byte(`{"ref":"x","ref_type":"branch"}`))
	f.Add(uint8(128), "pull_request", []byte("payload="+url.QueryEscape(string(ghPR("labeled", false, "1")))))
	f.Fuzz(func(t *testing.T, k uint8, event string, body []byte) {
		kind := forge.Types[int(k)%len(forge.Types)]
		req := signedRequest(kind, event, body, hookSecret)
		if k >= 128 { // GitHub's and Gitea's form content type
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		ev, err := forge.ReadEvent(req, kind, []byte(hookSecret), 1<<16)
		if err != nil {
			return
		}
		if ev.Kind == forge.KindPullRequest && ev.Action == "" {
			t.Errorf("pull request event without an action: %+v", ev)
		}
		if ev.Kind == forge.KindPush && ev.Branch == "" {
			t.Errorf("push event without a branch: %+v", ev)
		}
		if ev.Deleted && ev.After != "" {
			t.Errorf("deleted branch with a head: %+v", ev)
		}
		// A body signed with another secret never gets through.
		if _, err := forge.ReadEvent(signedRequest(kind, event, body, "x"+hookSecret), kind, []byte(hookSecret), 1<<16); !errors.Is(err, forge.ErrUnverified) {
			t.Errorf("wrongly signed delivery: %v", err)
		}
	})
}
