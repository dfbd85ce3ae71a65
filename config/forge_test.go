package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadForge fills what an app's forge leaves out: the type guessed from
// the repository's host, the web address and the repository's path.
func TestLoadForge(t *testing.T) {
	path := fixture(t, `
apps:
- name: gh
  repo: git@github.com:acme/shop.git
  forge: {token_file: token}
- name: gl
  repo: https://gitlab.example.com/acme/web/shop.git
  forge: {token_file: token}
- name: tea
  repo: https://example.com/git/acme/shop.git
  forge: {type: gitea, url: "https://example.com/git", token_file: token}
- name: plain
  repo: https://example.com/acme/plain.git
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(filepath.Dir(path), "token")
	want := map[string]Forge{
		"gh":    {Type: "github", URL: "https://github.com", TokenFile: token, Repo: "acme/shop"},
		"gl":    {Type: "gitlab", URL: "https://gitlab.example.com", TokenFile: token, Repo: "acme/web/shop"},
		"tea":   {Type: "gitea", URL: "https://example.com/git", TokenFile: token, Repo: "acme/shop"},
		"plain": {},
	}
	for _, a := range cfg.Apps {
		if a.Forge != want[a.Name] {
			t.Errorf("app %s: forge %+v, want %+v", a.Name, a.Forge, want[a.Name])
		}
	}
	if a, _ := cfg.App("plain"); a.Forge.Enabled() {
		t.Errorf("an app without forge: reports one")
	}
}

func TestLoadForgeErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"no_token", "apps:\n- name: a\n  repo: https://github.com/acme/r\n  forge: {type: github}\n", "arbor.yaml:4:3: apps[0].forge.token_file: required"},
		{"token_missing", "apps:\n- name: a\n  repo: https://github.com/acme/r\n  forge:\n    token_file: nope\n", "arbor.yaml:5:5: apps[0].forge.token_file:"},
		{"type_unknown", "apps:\n- name: a\n  repo: https://h.example.com/acme/r\n  forge:\n    type: bitbucket\n    token_file: token\n", `arbor.yaml:5:5: apps[0].forge.type: "bitbucket" is not a forge arbor knows: use gitea, github, gitlab`},
		{"type_unguessable", "apps:\n- name: a\n  repo: https://h.example.com/acme/r\n  forge: {token_file: token}\n", "apps[0].forge.type: cannot tell the forge from https://h.example.com/acme/r: set type"},
		{"local_repo", "apps:\n- name: a\n  repo: repo\n  forge: {type: gitea, token_file: token}\n", "arbor.yaml:4:3: apps[0].forge: a forge needs a remote repository"},
		{"url_not_http", "apps:\n- name: a\n  repo: https://h.example.com/acme/r\n  forge:\n    type: gitea\n    url: h.example.com\n    token_file: token\n", `arbor.yaml:6:5: apps[0].forge.url: "h.example.com" must be an http(s) address`},
		{"url_credentials", "apps:\n- name: a\n  repo: https://h.example.com/acme/r\n  forge:\n    type: gitea\n    url: https://me:secret@h.example.com\n    token_file: token\n", `apps[0].forge.url: "https://h.example.com" holds credentials`},
		{"repo_not_below_url", "apps:\n- name: a\n  repo: https://h.example.com/acme/r\n  forge:\n    type: gitea\n    url: https://h.example.com/git\n    token_file: token\n", "apps[0].forge: repository https://h.example.com/acme/r is not below the forge url"},
		{"repo_without_owner", "apps:\n- name: a\n  repo: https://github.com/r\n  forge: {token_file: token}\n", `apps[0].forge: repository https://github.com/r: path "r" is not owner/name`},
		{"unknown_key", "apps:\n- name: a\n  repo: https://github.com/acme/r\n  forge: {token: x}\n", "apps[0].forge.token: unknown key"},
		{"pull_requests_without_forge", "apps:\n- name: a\n  repo: https://github.com/acme/r\n  environments: pull_requests\n", "arbor.yaml:4:3: apps[0].environments: pull_requests needs the app's forge"},
		{"environments_unknown", "apps:\n- name: a\n  repo: https://github.com/acme/r\n  environments: tags\n", `apps[0].environments: "tags": use branches or pull_requests`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(fixture(t, tt.body))
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			got := err.Error()
			if i := strings.Index(got, "arbor.yaml"); i >= 0 {
				got = got[i:]
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("error:\n%s\nwant it to contain:\n%s", got, tt.want)
			}
			if strings.Contains(got, "secret") {
				t.Errorf("error quotes a credential: %s", got)
			}
		})
	}
}
