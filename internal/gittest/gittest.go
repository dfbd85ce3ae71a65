// Package gittest runs the real git CLI for tests, isolated from the
// machine's git configuration and with a fixed identity, so that tests make
// the same commits on a developer's laptop and on a clean CI machine.
package gittest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Env is the environment git runs in: no system or global configuration, no
// home directory, and a fixed author and committer.
func Env() []string {
	return append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/nonexistent",
		"GIT_AUTHOR_NAME=Arbor Test", "GIT_AUTHOR_EMAIL=test@arbor.invalid",
		"GIT_COMMITTER_NAME=Arbor Test", "GIT_COMMITTER_EMAIL=test@arbor.invalid",
	)
}

// Command is git with args, run in dir ("" for the current directory) with Env.
func Command(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env()
	return cmd
}

// Run runs git in dir and returns its output, trimmed; a failure fails tb.
func Run(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	out, err := Command(dir, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
