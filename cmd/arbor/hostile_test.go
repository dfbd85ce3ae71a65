//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run arbor on repositories a hostile branch could contain. Each
// run is a child process (this test binary, re-executed as arbor by
// TestMain) whose address space is capped at what it had at start plus
// childMemory: a regression that reads /dev/zero or a huge file crashes the
// child, and the test fails, instead of the machine running out of memory.

const (
	childArgsEnv = "ARBOR_TEST_CHILD_ARGS" // JSON list of arbor's arguments
	childMemory  = 512 << 20
	// childDeadline only fails a test whose child hangs (a FIFO read);
	// nothing asserts how fast a child is.
	childDeadline = 2 * time.Minute
)

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgsEnv); args != "" {
		os.Exit(runChild(args))
	}
	os.Exit(m.Run())
}

// runChild caps the process's address space, then runs arbor with args.
func runChild(args string) int {
	var list []string
	if err := json.Unmarshal([]byte(args), &list); err != nil {
		fmt.Fprintln(os.Stderr, "child args:", err)
		return 99
	}
	size, err := addressSpace()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 99
	}
	limit := &syscall.Rlimit{Cur: size + childMemory, Max: size + childMemory}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, limit); err != nil {
		fmt.Fprintln(os.Stderr, "child: setrlimit:", err)
		return 99
	}
	os.Args = append([]string{"arbor"}, list...)
	return cli()
}

// addressSpace is the process's virtual memory size (VmSize), in bytes.
func addressSpace() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmSize in /proc/self/status")
}

// arborLimited runs arbor with args in a memory-capped child and returns
// its stdout, stderr and exit code. A child that crashes (out of memory) or
// hangs fails the test.
func arborLimited(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), childDeadline)
	defer cancel()
	enc, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(enc))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("arbor %v did not return within %s (blocked?)\nstderr: %s", args, childDeadline, errOut.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("arbor %v: %v", args, err)
	}
	code := cmd.ProcessState.ExitCode()
	if code > exitUsage || strings.Contains(errOut.String(), "fatal error") {
		t.Fatalf("arbor %v crashed (exit %d):\n%s", args, code, limitText(errOut.String(), 2000))
	}
	return out.String(), errOut.String(), code
}

func limitText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

const secretContent = "TOP-SECRET-OUTSIDE-THE-REPOSITORY"

// hostileRepo makes a repository in a fresh directory, next to a file
// outside it whose content must never show.
func hostileRepo(t *testing.T) (repo, secret string) {
	t.Helper()
	base := t.TempDir()
	repo = filepath.Join(base, "repo")
	secret = filepath.Join(base, "secret.txt")
	writeFile(t, secret, secretContent+"\n")
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	return repo, secret
}

const configmapTemplate = "services:\n- name: web\n  image: nginx:1.27\n  configmap:\n  - {name: c, mount_path: /etc/c/data, repo_path: data}\n"

// TestValidateHostileRepository: validate refuses, with a clear error
// naming the file, every way a branch can make it read outside the
// repository, block, or exhaust memory; it reads nothing outside.
func TestValidateHostileRepository(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, repo, secret string)
		want  []string // in stdout+stderr
		code  int
	}{
		{"configmap link to a file outside", func(t *testing.T, repo, secret string) {
			writeFile(t, filepath.Join(repo, ".release.yaml"), configmapTemplate)
			symlink(t, secret, filepath.Join(repo, "data"))
		}, []string{"configmap[0].repo_path: symbolic link data points outside the repository"}, exitNo},
		{"configmap relative link out", func(t *testing.T, repo, secret string) {
			writeFile(t, filepath.Join(repo, ".release.yaml"), configmapTemplate)
			symlink(t, "../secret.txt", filepath.Join(repo, "data"))
		}, []string{`symbolic link data points outside the repository ("../secret.txt")`}, exitNo},
		{"configmap link to /dev/zero", func(t *testing.T, repo, _ string) {
			writeFile(t, filepath.Join(repo, ".release.yaml"), configmapTemplate)
			symlink(t, "/dev/zero", filepath.Join(repo, "data"))
		}, []string{`symbolic link data points outside the repository ("/dev/zero")`}, exitNo},
		{".release.yaml link to a file outside", func(t *testing.T, repo, secret string) {
			symlink(t, secret, filepath.Join(repo, ".release.yaml"))
		}, []string{".release.yaml: error: symbolic link .release.yaml points outside the repository"}, exitNo},
		{".release.yaml link to /dev/zero", func(t *testing.T, repo, _ string) {
			symlink(t, "/dev/zero", filepath.Join(repo, ".release.yaml"))
		}, []string{".release.yaml: error: symbolic link .release.yaml points outside the repository"}, exitNo},
		{"template in a directory linked outside", func(t *testing.T, repo, secret string) {
			symlink(t, filepath.Dir(secret), filepath.Join(repo, ".release"))
			writeFile(t, filepath.Join(filepath.Dir(secret), "application_template.yaml"), "services: [{name: "+secretContent+"}]\n")
		}, []string{"symbolic link .release points outside the repository"}, exitNo},
		{"FIFO .release.yaml", func(t *testing.T, repo, _ string) {
			if err := syscall.Mkfifo(filepath.Join(repo, ".release.yaml"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{".release.yaml: error: not a regular file (a named pipe)"}, exitNo},
		{"FIFO configmap file", func(t *testing.T, repo, _ string) {
			writeFile(t, filepath.Join(repo, ".release.yaml"), configmapTemplate)
			if err := syscall.Mkfifo(filepath.Join(repo, "data"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"configmap[0].repo_path: data: not a regular file (a named pipe)"}, exitNo},
		{"95 MB .release.yaml", func(t *testing.T, repo, _ string) {
			writeFile(t, filepath.Join(repo, ".release.yaml"), "services: [{name: web, image: nginx}]\n")
			if err := os.Truncate(filepath.Join(repo, ".release.yaml"), 95_000_000); err != nil {
				t.Fatal(err)
			}
		}, []string{".release.yaml: error: file too large: 95000000 bytes, the limit is 1 MiB"}, exitNo},
		{"large configmap file", func(t *testing.T, repo, _ string) {
			writeFile(t, filepath.Join(repo, ".release.yaml"), configmapTemplate)
			writeFile(t, filepath.Join(repo, "data"), "")
			if err := os.Truncate(filepath.Join(repo, "data"), 2<<30); err != nil {
				t.Fatal(err)
			}
		}, []string{"data: file too large: 2147483648 bytes, the limit is 1 MiB"}, exitNo},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo, secret := hostileRepo(t)
			c.setup(t, repo, secret)
			stdout, stderr, code := arborLimited(t, "validate", repo)
			all := stdout + stderr
			if code != c.code {
				t.Errorf("exit %d, want %d\n%s", code, c.code, all)
			}
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			if strings.Contains(all, secretContent) {
				t.Errorf("a file outside the repository was read:\n%s", all)
			}
		})
	}
}

// TestConfigSizeFlag: --max-config-size moves the limit both ways.
func TestConfigSizeFlag(t *testing.T) {
	repo, _ := hostileRepo(t)
	writeFile(t, filepath.Join(repo, ".release.yaml"), "services: [{name: web, image: nginx}]\n"+strings.Repeat("# padding\n", 200))
	stdout, stderr, code := arborLimited(t, "validate", "--max-config-size", "1000", repo)
	if code != exitNo || !strings.Contains(stdout, "file too large: 2038 bytes, the limit is 1000 bytes") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
	if stdout, stderr, code := arborLimited(t, "validate", repo); code != exitOK {
		t.Errorf("exit %d under the default limit\n%s%s", code, stdout, stderr)
	}
	_, stderr, code = arborLimited(t, "render", "--branch", "main", "--max-config-size", "1000", repo)
	if code != exitNo || !strings.Contains(stderr, "the limit is 1000 bytes") {
		t.Errorf("render: exit %d\n%s", code, stderr)
	}
}

// TestRenderHostileRepository: render gives the same refusals as validate.
func TestRenderHostileRepository(t *testing.T) {
	repo, _ := hostileRepo(t)
	if err := syscall.Mkfifo(filepath.Join(repo, ".release.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := arborLimited(t, "render", "--branch", "main", repo)
	if code != exitNo || !strings.Contains(stderr, ".release.yaml: error: not a regular file (a named pipe)") {
		t.Errorf("FIFO: exit %d\n%s", code, stderr)
	}
	repo, _ = hostileRepo(t)
	writeFile(t, filepath.Join(repo, ".release.yaml"), configmapTemplate)
	symlink(t, "/dev/zero", filepath.Join(repo, "data"))
	_, stderr, code = arborLimited(t, "render", "--branch", "main", repo)
	if code != exitNo || !strings.Contains(stderr, "symbolic link data points outside the repository") {
		t.Errorf("/dev/zero: exit %d\n%s", code, stderr)
	}
}

// TestNoControlBytesInTextOutput: keys, values, paths and directory names
// carrying escape sequences (a screen clear, an OSC 52 clipboard write, a
// C1 CSI) reach the terminal quoted, in text and GitHub findings and in
// the CLI's error messages; JSON output stays JSON.
func TestNoControlBytesInTextOutput(t *testing.T) {
	const (
		osc52 = "\x1b]52;c;SGVsbG8=\x07"
		clear = "\x1b[2J\x1b[H"
	)
	base := t.TempDir()
	repo := filepath.Join(base, "repo"+clear)
	writeFile(t, filepath.Join(repo, ".release.yaml"), "application_template: \"t"+clear+".yaml\"\n")
	inline := filepath.Join(base, "inline")
	// YAML takes control characters only as escapes in double quotes.
	writeFile(t, filepath.Join(inline, ".release.yaml"), `services:
- name: web
  image: "nginx\x9b31m"
  "\e]52;c;SGVsbG8=\a": 1
  depends_on: ["db\e[2J\e[H"]
`)
	noConfig := filepath.Join(base, "none"+osc52)
	if err := os.Mkdir(noConfig, 0o755); err != nil {
		t.Fatal(err)
	}
	runs := [][]string{
		{"validate", repo, inline},
		{"validate", "--format", "github", repo, inline},
		{"validate", noConfig},
		{"render", "--branch", "main", repo},
		{"render", "--branch", "main", inline},
		{"render", "--branch", "main", noConfig},
	}
	for _, args := range runs {
		stdout, stderr, code := arborLimited(t, args...)
		all := stdout + stderr
		if code == exitOK {
			t.Errorf("%q: exit 0, want findings or an error\n%s", args, all)
		}
		if i := strings.IndexAny(all, "\x1b\x07\u009b"); i >= 0 {
			t.Errorf("%q: a control character reaches the terminal at byte %d:\n%q", args, i, all)
		}
		if !strings.Contains(all, `\x1b`) {
			t.Errorf("%q: the escape is not shown quoted:\n%q", args, all)
		}
	}
	stdout, _, _ := arborLimited(t, "validate", "--format", "json", inline)
	var findings []map[string]any
	if err := json.Unmarshal([]byte(stdout), &findings); err != nil {
		t.Fatalf("json output: %v\n%s", err, stdout)
	}
	if !strings.Contains(stdout, `\u001b`) || strings.Contains(stdout, "\x1b") {
		t.Errorf("json output is not JSON-escaped:\n%q", stdout)
	}
}
