package testcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// EnvSecondCluster names the second local cluster of the multi-cluster
// tests; by default $ARBOR_CLUSTER with a "2" after it ("arbor2" without it).
const EnvSecondCluster = "ARBOR_TEST_CLUSTER2"

// Cluster is a second local cluster, started by hack/cluster.sh for the
// test, which may stop it and start it again.
type Cluster struct {
	Name       string
	Kubeconfig string
	script     string
}

// Second starts the second local cluster (hack/cluster.sh up; a running one
// is reused) and returns it. It fails t when the cluster cannot start: a
// multi-cluster test never passes by skipping. Under -short it skips.
func Second(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs a second local cluster")
	}
	name := os.Getenv(EnvSecondCluster)
	if name == "" {
		name = os.Getenv("ARBOR_CLUSTER")
		if name == "" {
			name = "arbor"
		}
		name += "2"
	}
	return Named(t, name)
}

// Config is a rest.Config for the cluster, after checking that it answers.
func (c *Cluster) Config(t testing.TB) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatalf("cluster %s kubeconfig: %v", c.Name, err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	return cfg
}

// Clientset is a typed client for the cluster.
func (c *Cluster) Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config(t))
	if err != nil {
		t.Fatalf("cluster %s client: %v", c.Name, err)
	}
	return cs
}

// Stop stops the cluster's processes, keeping its data (hack/cluster.sh stop).
func (c *Cluster) Stop(t testing.TB) { t.Helper(); c.run(t, "stop", time.Minute) }

// Start starts a stopped cluster again and waits until it answers.
func (c *Cluster) Start(t testing.TB) { t.Helper(); c.run(t, "start", 3*time.Minute) }

func (c *Cluster) run(t testing.TB, verb string, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", c.script, verb)
	cmd.Env = append(os.Environ(), "ARBOR_CLUSTER="+c.Name)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/cluster.sh %s (ARBOR_CLUSTER=%s): %v\n%s", verb, c.Name, err, tail(stderr.String(), 2000))
	}
	return string(out)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// repoRoot is the module's root: the first directory up from the test's
// own with a go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory: cannot find hack/cluster.sh")
		}
		dir = parent
	}
}

// Named starts (or reuses) the local cluster name with hack/cluster.sh up and
// returns it: a benchmark that wants a fresh cluster per phase names one of
// its own and calls Down when the phase is over.
func Named(t testing.TB, name string) *Cluster {
	t.Helper()
	c := &Cluster{Name: name, script: filepath.Join(repoRoot(t), "hack", "cluster.sh")}
	out := c.run(t, "up", 10*time.Minute)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	path, ok := strings.CutPrefix(lines[len(lines)-1], "export KUBECONFIG=")
	if !ok {
		t.Fatalf("hack/cluster.sh up for %s printed no kubeconfig: %s", name, out)
	}
	c.Kubeconfig = path
	return c
}

// Down deletes the cluster and everything in it (hack/cluster.sh down).
func (c *Cluster) Down(t testing.TB) { t.Helper(); c.run(t, "down", 5*time.Minute) }

// ScaleNodes sets the cluster's number of kwok nodes (110 pods each).
func (c *Cluster) ScaleNodes(t testing.TB, n int) {
	t.Helper()
	bin := strings.TrimSpace(c.run(t, "bin", time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kwokctl"), "scale", "node", "--name", c.Name, "--replicas", strconv.Itoa(n))
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+kwokWorkdir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kwokctl scale node --name %s --replicas %d: %v\n%s", c.Name, n, err, tail(string(out), 2000))
	}
}

// kwokWorkdir is where hack/cluster.sh keeps its clusters.
func kwokWorkdir() string {
	if c := os.Getenv("ARBOR_CACHE"); c != "" {
		return filepath.Join(c, "kwok")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "arbor", "kwok")
}
