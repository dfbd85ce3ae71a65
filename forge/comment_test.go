package forge_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/arbordev/arbor/forge"
)

func TestRenderComment(t *testing.T) {
	diff := "--- Deployment/shop-pr-5/web (tracking)\n+++ Deployment/shop-pr-5/web (this pull request)\n@@ -1 +1 @@\n-  replicas: 1\n+  replicas: 2\n"
	got := forge.RenderComment(forge.Comment{
		App: "shop", Environment: "shop-pr-5", Phase: "Ready",
		URLs:   []string{"https://web-pr-5.preview.example.com", "https://api-pr-5.preview.example.com"},
		Commit: "1111111111111111111111111111111111111111", Expires: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Diff: diff, DiffBase: "main",
	})
	for _, want := range []string{"arbor: shop", "`shop-pr-5`", "| **Phase** | Ready |", "https://web-pr-5.preview.example.com", "https://api-pr-5.preview.example.com",
		"`1111111111111111111111111111111111111111`", "2026-12-01T00:00:00Z", "<details><summary>The manifest diff against main (5 lines)</summary>", "```diff\n" + diff + "```\n</details>"} {
		if !strings.Contains(got, want) {
			t.Errorf("comment lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "cut") {
		t.Errorf("a short diff was cut:\n%s", got)
	}
}

func TestRenderCommentBounds(t *testing.T) {
	var b strings.Builder
	lines := 0
	for b.Len() < 3*forge.MaxCommentBytes {
		fmt.Fprintf(&b, "+  key-%d: value\n", lines)
		lines++
	}
	got := forge.RenderComment(forge.Comment{App: "shop", Phase: "Ready", Diff: b.String(), DiffBase: "main"})
	if len(got) > forge.MaxCommentBytes {
		t.Errorf("comment of %d bytes, over %d", len(got), forge.MaxCommentBytes)
	}
	shown := strings.Count(got, "+  key-")
	if want := fmt.Sprintf("_The diff is cut: %d more lines are not shown._", lines-shown); !strings.Contains(got, want) {
		t.Errorf("comment lacks the note %q", want)
	}
	if !strings.Contains(got, fmt.Sprintf("+  key-%d: value\n```", shown-1)) {
		t.Errorf("the diff is not cut at a line end before the fence")
	}
	if !utf8.ValidString(got) {
		t.Errorf("comment is not valid UTF-8")
	}
}

// A diff cannot close its code block: the fence is longer than any run of
// backticks in it, so "</details>" or Markdown in a manifest stays text.
func TestRenderCommentFence(t *testing.T) {
	diff := "+  note: \"````</details><img src=x>\"\n"
	got := forge.RenderComment(forge.Comment{App: "shop", Phase: "Ready", Diff: diff})
	if !strings.Contains(got, "`````diff\n"+diff+"`````\n</details>") {
		t.Errorf("diff not fenced by five backticks:\n%s", got)
	}
	got = forge.RenderComment(forge.Comment{App: "shop", Phase: "Failed", Reason: "a | b <script>", URLs: []string{"https://x|y"}})
	if !strings.Contains(got, `a \| b &lt;script&gt;`) || !strings.Contains(got, `https://x\|y`) {
		t.Errorf("table cells not escaped:\n%s", got)
	}
}

func TestRenderCommentGoneAndEmpty(t *testing.T) {
	got := forge.RenderComment(forge.Comment{App: "shop", Environment: "shop-pr-5", Gone: true, Commit: "abc", Diff: "+x\n", URLs: []string{"https://web"}})
	if !strings.Contains(got, "environment is deleted") || strings.Contains(got, "https://web") || strings.Contains(got, "+x") {
		t.Errorf("comment for a closed pull request:\n%s", got)
	}
	got = forge.RenderComment(forge.Comment{App: "shop", Phase: "Ready", DiffBase: "main"})
	if !strings.Contains(got, "No change in Kubernetes objects against main.") || strings.Contains(got, "<details>") {
		t.Errorf("comment without a diff:\n%s", got)
	}
}

func TestDescription(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"deploying\n  the\tenvironment ", 140, "deploying the environment"},
		{strings.Repeat("a", 140), 140, strings.Repeat("a", 140)},
		{strings.Repeat("a", 141), 140, strings.Repeat("a", 139) + "…"},
		{strings.Repeat("é", 300), 140, strings.Repeat("é", 139) + "…"},
	}
	for _, c := range cases {
		got := forge.Description(c.in, c.max)
		if got != c.want || utf8.RuneCountInString(got) > c.max {
			t.Errorf("Description(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

func TestRedactSecret(t *testing.T) {
	secret := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "db"},
		"data": map[string]any{"password": "aHVudGVyMg=="}, "stringData": map[string]any{"token": "hunter2"}}
	if !forge.RedactSecret(secret) {
		t.Fatal("a Secret was not recognised")
	}
	if s := fmt.Sprint(secret); strings.Contains(s, "hunter2") || strings.Contains(s, "aHVudGVyMg==") || !strings.Contains(s, "password") || !strings.Contains(s, "token") {
		t.Errorf("redacted Secret: %s; want keys kept, values masked", s)
	}
	odd := map[string]any{"apiVersion": "v1", "kind": "Secret", "data": "not-a-map-hunter2"}
	forge.RedactSecret(odd)
	if strings.Contains(fmt.Sprint(odd), "hunter2") {
		t.Errorf("a Secret whose data is not a map kept it: %v", odd)
	}
	cm := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"k": "v"}}
	if forge.RedactSecret(cm) || cm["data"].(map[string]any)["k"] != "v" {
		t.Errorf("a ConfigMap was masked: %v", cm)
	}
}

func TestRepoFromURL(t *testing.T) {
	cases := []struct {
		repo, forgeURL, web, path string
		kind                      forge.Type
	}{
		{"https://github.com/acme/shop.git", "", "https://github.com", "acme/shop", forge.GitHub},
		{"git@github.com:acme/shop.git", "", "https://github.com", "acme/shop", forge.GitHub},
		{"ssh://git@gitlab.com:2222/acme/web/shop.git", "", "https://gitlab.com", "acme/web/shop", forge.GitLab},
		{"https://gitlab.example.com/acme/web/shop", "", "https://gitlab.example.com", "acme/web/shop", forge.GitLab},
		{"http://127.0.0.1:3000/acme/shop.git", "", "http://127.0.0.1:3000", "acme/shop", ""},
		{"https://example.com/git/acme/shop.git", "https://example.com/git/", "https://example.com/git", "acme/shop", ""},
		{"https://codeberg.org/acme/shop.git", "", "https://codeberg.org", "acme/shop", forge.Gitea},
		{"https://github.example.com/acme/shop.git", "", "https://github.example.com", "acme/shop", forge.GitHub},
		{"https://gitea.example.com/acme/shop.git", "", "https://gitea.example.com", "acme/shop", forge.Gitea},
	}
	for _, c := range cases {
		web, path, err := forge.RepoFromURL(c.repo, c.forgeURL)
		if err != nil || web != c.web || path != c.path {
			t.Errorf("RepoFromURL(%q, %q) = %q, %q, %v; want %q, %q", c.repo, c.forgeURL, web, path, err, c.web, c.path)
		}
		if kind, ok := forge.GuessTypeFromURL(c.repo); kind != c.kind || ok != (c.kind != "") {
			t.Errorf("GuessTypeFromURL(%q) = %q, %v; want %q", c.repo, kind, ok, c.kind)
		}
	}
	for _, bad := range []struct{ repo, forgeURL string }{
		{"/srv/git/shop", ""}, {"https://github.com/shop", ""}, {"file:///srv/acme/shop", ""},
		{"https://example.com/acme/shop", "https://example.com/git"},
	} {
		if _, _, err := forge.RepoFromURL(bad.repo, bad.forgeURL); err == nil {
			t.Errorf("RepoFromURL(%q, %q): no error", bad.repo, bad.forgeURL)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	ok := forge.Options{Type: forge.GitHub, Repo: "acme/shop", Token: "t", App: "shop"}
	for name, mod := range map[string]func(*forge.Options){
		"no repo":              func(o *forge.Options) { o.Repo = "" },
		"repo without owner":   func(o *forge.Options) { o.Repo = "shop" },
		"no token":             func(o *forge.Options) { o.Token = "" },
		"no app":               func(o *forge.Options) { o.App = "" },
		"unknown type":         func(o *forge.Options) { o.Type = "bitbucket" },
		"gitea without url":    func(o *forge.Options) { o.Type = forge.Gitea },
		"credentials in url":   func(o *forge.Options) { o.URL = "https://user:pw@ghe.example.com" },
		"url that is not http": func(o *forge.Options) { o.URL = "ftp://ghe.example.com" },
	} {
		o := ok
		mod(&o)
		if _, err := forge.New(o); err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "pw@") {
			t.Errorf("%s: error quotes the credentials: %v", name, err)
		}
	}
	if _, err := forge.New(ok); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

// A paused environment's comment says since when and how to wake it; a
// branch name cannot close the command's code span or break the table.
func TestRenderCommentPaused(t *testing.T) {
	got := forge.RenderComment(forge.Comment{
		App: "shop", Environment: "shop-pr-5", Phase: "Paused", Reason: "paused by the app's schedule",
		Since:   time.Date(2026, 11, 28, 19, 0, 0, 0, time.UTC),
		WakeURL: "https://web-pr-5.preview.example.com", ResumeCommand: "arbor env resume shop feat`|x",
	})
	for _, want := range []string{"| **Phase** | Paused |", "| **Reason** | paused by the app's schedule |", "| **Since** | 2026-11-28T19:00:00Z |",
		"| **Wake** | open https://web-pr-5.preview.example.com (the first request wakes it), or run `arbor env resume shop feat'\\|x` |"} {
		if !strings.Contains(got, want) {
			t.Errorf("comment lacks %q:\n%s", want, got)
		}
	}
	if ready := forge.RenderComment(forge.Comment{App: "shop", Phase: "Ready"}); strings.Contains(ready, "Wake") || strings.Contains(ready, "Since") {
		t.Errorf("a running environment's comment says how to wake it:\n%s", ready)
	}
}
