package main

import (
	"path/filepath"
	"testing"
)

const twoContexts = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example:6443"}
- name: b
  cluster: {server: "https://b.example:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx-a
  context: {cluster: a, user: u}
- name: ctx-b
  context: {cluster: b, user: u}
current-context: ctx-a
`

func TestClusterFlagsLikeKubectl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	writeFile(t, path, twoContexts)
	cases := []struct {
		name      string
		env, flag string
		context   string
		want      string
	}{
		{"KUBECONFIG and its current context", path, "", "", "https://a.example:6443"},
		{"--context", path, "", "ctx-b", "https://b.example:6443"},
		{"--kubeconfig over KUBECONFIG", filepath.Join(t.TempDir(), "missing"), path, "ctx-b", "https://b.example:6443"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", c.env)
			f := clusterFlags{kubeconfig: c.flag, context: c.context}
			cfg, err := f.restConfig()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != c.want {
				t.Fatalf("host %s, want %s", cfg.Host, c.want)
			}
		})
	}
	t.Setenv("KUBECONFIG", path)
	if _, err := (&clusterFlags{context: "nope"}).restConfig(); err == nil {
		t.Fatal("an unknown context was accepted")
	}
}
