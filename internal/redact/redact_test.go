package redact

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@git.example.com/a.git":     "https://git.example.com/a.git",
		"https://ghp_TOKEN123@github.com/a/b.git":   "https://github.com/a/b.git",
		"https://oauth2:glpat-x@gitlab.com/a/b.git": "https://gitlab.com/a/b.git",
		"ssh://git@github.com/a/b.git":              "ssh://github.com/a/b.git",
		"ssh://deploy-TOKEN@host:2222/a.git":        "ssh://host:2222/a.git",
		"git@github.com:a/b.git":                    "github.com:a/b.git",
		"TOKEN123@github.com:a/b.git":               "github.com:a/b.git",
		"https://us%zzer:p@w@host/a.git":            "https://host/a.git", // does not parse as a URL
		"https://host/a@b.git":                      "https://host/a@b.git",
		"/srv/git/docs.git":                         "/srv/git/docs.git",
		"https://example.com/x?y=1":                 "https://example.com/x?y=1",
		"https://example.com/x?next=a@b":            "https://example.com/x?next=a@b",
		"":                                          "",
		"C:/repos/a.git":                            "C:/repos/a.git",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestError(t *testing.T) {
	base := errors.New("boom")
	addr := "https://ghp_SECRETTOKEN@git.example.com/a.git"
	err := Error(fmt.Errorf(`Get "%s/info/refs": %w (token ghp_SECRETTOKEN)`, addr, base), addr)
	if strings.Contains(err.Error(), "SECRETTOKEN") {
		t.Errorf("token left in %q", err)
	}
	if !strings.Contains(err.Error(), "https://git.example.com/a.git/info/refs") {
		t.Errorf("address not shown redacted: %q", err)
	}
	if !errors.Is(err, base) {
		t.Error("the redacted error no longer wraps its cause")
	}
	pw := "https://bob:p%40ss-word@host/a.git"
	if got := Error(errors.New("auth p@ss-word failed"), pw).Error(); strings.Contains(got, "p@ss-word") {
		t.Errorf("decoded password left in %q", got)
	}
	if got := Error(errors.New("git said no"), "ssh://git@host/a.git").Error(); got != "git said no" {
		t.Errorf("a short ssh user mangled the message: %q", got)
	}
	if Error(nil, addr) != nil {
		t.Error("Error(nil) is not nil")
	}
}
