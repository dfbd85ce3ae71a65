package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A configuration error stops `arbor run` before it touches a cluster, with
// exit code 2 and the error at FILE:LINE.
func TestRunRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "arbor.yaml")
	if err := os.WriteFile(path, []byte("apps:\n- name: shop\n  repo: "+dir+"\n  poll_interval: often\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--config", path}, path + `:4:3: apps[0].poll_interval: invalid duration "often"`},
		{[]string{"run", "--config", path, "--log-format", "xml"}, `--log-format "xml"`},
		{[]string{"run", "--config", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{[]string{"run", "--config", path, "--kube-api-qps", "0"}, "--kube-api-qps 0, --kube-api-burst 400: both must be positive"},
	} {
		root := newRootCmd()
		root.SetArgs(tt.args)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.ExecuteContext(context.Background())
		var ec *exitError
		if !errors.As(err, &ec) || ec.code != exitUsage {
			t.Fatalf("%v: error %v, want exit code %d", tt.args, err, exitUsage)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %q, want it to contain %q", tt.args, err, tt.want)
		}
	}
}
