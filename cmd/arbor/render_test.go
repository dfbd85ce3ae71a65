package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// runArbor runs the command line and returns stdout, stderr and the exit code.
func runArbor(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.Execute()
	code := 0
	var ec *exitError
	switch {
	case err == nil:
	case errors.As(err, &ec):
		code = ec.code
		errOut.WriteString(err.Error())
	default:
		code = exitUsage
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), code
}

func TestRenderExamplesYAML(t *testing.T) {
	for _, c := range []struct {
		args  []string
		kinds []string
	}{
		{[]string{"../../examples/shop"}, []string{"Namespace", "Deployment", "Service", "PersistentVolumeClaim", "Job", "Ingress", "Secret"}},
		{[]string{"../../examples/storefront", "--import", "catalog=../../examples/catalog"}, []string{"Namespace", "Deployment", "Job", "Ingress"}},
		{[]string{"../../examples/catalog"}, []string{"Namespace", "Deployment", "Job"}},
		{[]string{"../../examples/kustomized"}, []string{"Namespace", "Deployment", "NetworkPolicy", "ConfigMap"}},
	} {
		args := append([]string{"render", "--branch", "feature/try-it", "--commit", "0123456789abcdef0123456789abcdef01234567"}, c.args...)
		stdout, stderr, code := runArbor(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, stderr)
		}
		dec := yaml.NewDecoder(strings.NewReader(stdout))
		seen := map[string]bool{}
		n := 0
		for {
			var o map[string]any
			if err := dec.Decode(&o); err != nil {
				break
			}
			kind, _ := o["kind"].(string)
			if n == 0 && kind != "Namespace" {
				t.Errorf("%v: first document is %s, want Namespace", c.args, kind)
			}
			seen[kind] = true
			n++
		}
		for _, k := range c.kinds {
			if !seen[k] {
				t.Errorf("%v: no %s in the output (%d documents)", c.args, k, n)
			}
		}
	}
}

func TestRenderJSONList(t *testing.T) {
	stdout, stderr, code := runArbor(t, "render", "../../examples/shop", "--branch", "main", "--output", "json", "--param", "unused=1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var list struct {
		Kind  string           `json:"kind"`
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatal(err)
	}
	if list.Kind != "List" || len(list.Items) < 10 {
		t.Fatalf("got kind %q with %d items", list.Kind, len(list.Items))
	}
	ns := list.Items[0]["metadata"].(map[string]any)
	ann := ns["annotations"].(map[string]any)
	if ann["arbor.dev/environment-template"] != "permanent" {
		t.Errorf("main of shop (tracking_branch main) rendered with template %v", ann["arbor.dev/environment-template"])
	}
}

func TestRenderErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"render", "../../examples/shop"}, exitUsage, `"branch" not set`},
		{[]string{"render", "../../examples/shop", "--branch", "b", "--output", "xml"}, exitUsage, "--output"},
		{[]string{"render", "../../examples/shop", "--branch", "b", "--param", "novalue"}, exitUsage, "NAME=VALUE"},
		{[]string{"render", "../../examples/storefront", "--branch", "b"}, exitNo, "--import catalog=DIR"},
		{[]string{"render", "../../examples/nope", "--branch", "b"}, exitUsage, "stat ../../examples/nope: no such file or directory"},
		{[]string{"render", "../../examples/shop/.release.yaml", "--branch", "b"}, exitUsage, "../../examples/shop/.release.yaml: not a directory"},
		{[]string{"render", "../../render", "--branch", "b"}, exitNo, "no .release.yaml"},
	} {
		_, stderr, code := runArbor(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// TestRenderSymlinkOutsideRepo checks a configmap repo_path that is a
// symlink leaving the repository is refused, not read.
func TestRenderSymlinkOutsideRepo(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("host file"), 0o600); err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	tmpl := "services:\n- name: web\n  image: nginx:1.27\n  configmap:\n  - {name: c, mount_path: /c/x.txt, repo_path: link.txt}\n"
	if err := os.WriteFile(filepath.Join(repo, ".release.yaml"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(repo, "link.txt")); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runArbor(t, "render", repo, "--branch", "main")
	if code == 0 || strings.Contains(stdout, "host file") {
		t.Fatalf("exit %d; the file outside the repository was read:\n%s", code, stdout)
	}
	if !strings.Contains(stderr, "link.txt") {
		t.Errorf("error does not name the path: %s", stderr)
	}
}
