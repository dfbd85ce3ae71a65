package reconciler_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/arbordev/arbor/diagnose"
	"github.com/arbordev/arbor/reconciler"
)

// brokenApp puts one service or job in each state the diagnosis names. The
// arbor.test/* images take their state from hack/kwok/stage-diagnostics.yaml;
// the migrate job fails by the test-fail stage; "nowhere" asks for a node
// label no kwok node has; db's claim names a storage class that does not
// exist. Every kwok container's log is hack/kwok/arbor-container.log (30
// lines).
const brokenApp = `services:
- name: crash
  image: arbor.test/crash-loop:1
- name: oom
  image: arbor.test/oom-killed:1
  memory: {limits: 64Mi, requests: 32Mi}
- name: notready
  image: arbor.test/not-ready:1
  readiness_probe: {http_get: {path: /healthz, port: 80}, period_seconds: 1, failure_threshold: 1}
- name: pull
  image: arbor.test/image-pull:1
- name: nowhere
  image: nginx:1.27-alpine
  node_selector: [{key: arbor.test/no-such-node, value: "true"}]
- name: db
  image: nginx:1.27-alpine
  volumes: [{name: data, type: persistent, mount_path: /data}]
  storage: {size: 1Gi, type: slow}
jobs:
- name: migrate
  image: migrate:1
  backoff_limit: 0
  labels: {arbor.dev/test-fail: "true"}
workflows:
- name: setup
  parallelize:
  - step: all
    tasks: [services.all, jobs.migrate]
`

// Each broken state shows in the environment's status with its reason and
// what to act on (the image, the exit code and restarts, the memory limit,
// the scheduler's message, the probe, the claim), the last log lines of a
// crashing container and of the failed job (at most 20, the newest), and in
// arbor_environment_problems.
func TestDiagnosticsThroughDaemon(t *testing.T) {
	app := appName(t)
	r := newRepo(t, brokenApp)
	cfg := newConfig(t, "arbor-"+app, fmt.Sprintf(`apps:
- name: %s
  repo: %s
  poll_interval: 1h
defaults:
  storage_classes: {slow: arbor-test-no-such-class}
`, app, r.dir))
	d := startDaemon(t, cfg)

	want := map[string]diagnose.Reason{
		"service crash": diagnose.CrashLoopBackOff, "service oom": diagnose.OOMKilled, "service notready": diagnose.ReadinessFailing,
		"service pull": diagnose.ImagePullBackOff, "service nowhere": diagnose.Unschedulable, "job migrate": diagnose.JobFailed,
	}
	var env *reconciler.EnvironmentStatus
	got := map[string]diagnose.Problem{}
	eventually(t, 90*time.Second, "every problem diagnosed, with the log lines", func() bool {
		env = d.env(app, "main")
		if env == nil {
			return false
		}
		got = map[string]diagnose.Problem{}
		for _, p := range env.Problems {
			got[p.Kind+" "+p.Name+" "+string(p.Reason)] = p
		}
		for w, reason := range want {
			p, ok := got[w+" "+string(reason)]
			if !ok || (p.Reason == diagnose.CrashLoopBackOff || p.Reason == diagnose.JobFailed) && len(p.Logs) == 0 {
				return false
			}
		}
		return volumeProblem(env) != nil
	})
	t.Logf("phase %s, problems: %+v", env.Phase, env.Problems)

	crash := got["service crash CrashLoopBackOff"]
	if crash.ExitCode == nil || *crash.ExitCode != 3 || crash.Restarts != 4 || !strings.Contains(crash.Message, "code 3") {
		t.Errorf("crash loop: %+v", crash)
	}
	checkLastLines(t, "crash loop", crash.Logs)
	oom := got["service oom OOMKilled"]
	if oom.MemoryLimit != "64Mi" || !strings.Contains(oom.Message, "64Mi") {
		t.Errorf("OOMKilled: %+v", oom)
	}
	if len(oom.Logs) != 0 {
		t.Errorf("OOMKilled: log lines read although the limit says why: %v", oom.Logs)
	}
	nr := got["service notready ReadinessFailing"]
	if !strings.Contains(nr.Message, "HTTP GET /healthz on port 80") {
		t.Errorf("readiness: %+v", nr)
	}
	pull := got["service pull ImagePullBackOff"]
	if pull.Image != "arbor.test/image-pull:1" || !strings.Contains(pull.Message, "arbor.test/image-pull:1") {
		t.Errorf("image pull: %+v", pull)
	}
	nowhere := got["service nowhere Unschedulable"]
	if !strings.Contains(nowhere.Message, "node(s) didn't match") {
		t.Errorf("unschedulable: want the scheduler's message, got %+v", nowhere)
	}
	job := got["job migrate JobFailed"]
	if job.ExitCode == nil || *job.ExitCode != 1 {
		t.Errorf("job: %+v", job)
	}
	checkLastLines(t, "job", job.Logs)
	if v := volumeProblem(env); !strings.Contains(v.Message, `"arbor-test-no-such-class"`) {
		t.Errorf("claim: %+v", v)
	}

	// The metric: one environment of the app shows each reason.
	resp, err := http.Get(d.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, reason := range []diagnose.Reason{diagnose.CrashLoopBackOff, diagnose.OOMKilled, diagnose.ReadinessFailing,
		diagnose.ImagePullBackOff, diagnose.Unschedulable, diagnose.JobFailed, diagnose.PVCPending} {
		v := mustCounter(t, d.reg, "arbor_environment_problems", func(l map[string]string) bool {
			return l["app"] == app && l["reason"] == string(reason)
		})
		if v != 1 {
			t.Errorf("arbor_environment_problems{reason=%s} = %v, want 1", reason, v)
		}
	}
	if v := mustCounter(t, d.reg, "arbor_environment_problems", func(l map[string]string) bool {
		return l["app"] == app && l["reason"] == string(diagnose.WaitingForSlot)
	}); v != 0 {
		t.Errorf("arbor_environment_problems{reason=WaitingForSlot} = %v, want 0", v)
	}
}

func volumeProblem(env *reconciler.EnvironmentStatus) *diagnose.Problem {
	for _, p := range env.Problems {
		if p.Kind == diagnose.KindVolume && p.Reason == diagnose.PVCPending {
			return &p
		}
	}
	return nil
}

// checkLastLines: the container's log has 30 lines; status keeps the last 20.
func checkLastLines(t *testing.T, what string, logs []string) {
	t.Helper()
	if len(logs) != diagnose.MaxLogLines || logs[0] != "arbor test container log line 11" || logs[len(logs)-1] != "arbor test container log line 30" {
		t.Errorf("%s: want log lines 11 to 30, got %q", what, logs)
	}
}
