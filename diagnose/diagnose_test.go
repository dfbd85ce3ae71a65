package diagnose

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func pod(name, label, value string, statuses ...corev1.ContainerStatus) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{label: value, "other": "x"},
		CreationTimestamp: metav1.NewTime(now.Add(-time.Minute))}}
	for _, s := range statuses {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: s.Name, Image: "registry.example/" + s.Name + ":1"})
	}
	p.Status.ContainerStatuses = statuses
	p.Status.Phase = corev1.PodRunning
	return p
}

func waiting(name, reason, msg string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}
}

func one(t *testing.T, ps []Problem) Problem {
	t.Helper()
	if len(ps) != 1 {
		t.Fatalf("want one problem, got %+v", ps)
	}
	return ps[0]
}

func TestImagePull(t *testing.T) {
	for reason, want := range map[string]Reason{"ImagePullBackOff": ImagePullBackOff, "ErrImagePull": ErrImagePull, "InvalidImageName": ErrImagePull} {
		p := one(t, Pod(pod("web-1", labelService, "web", waiting("web", reason, "manifest unknown")), now))
		if p.Reason != want || p.Kind != KindService || p.Name != "web" || p.Image != "registry.example/web:1" ||
			!strings.Contains(p.Message, "registry.example/web:1") || !strings.Contains(p.Message, "manifest unknown") {
			t.Errorf("%s: %+v", reason, p)
		}
	}
}

func TestCrashLoopNamesExitCodeAndRestartsAndWantsPreviousLog(t *testing.T) {
	cs := waiting("web", "CrashLoopBackOff", "back-off")
	cs.RestartCount = 4
	cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}
	p := one(t, Pod(pod("web-1", labelService, "web", cs), now))
	if p.Reason != CrashLoopBackOff || p.ExitCode == nil || *p.ExitCode != 3 || p.Restarts != 4 || !p.WantLogs || !p.PreviousLogs ||
		!strings.Contains(p.Message, "code 3") || !strings.Contains(p.Message, "4 restarts") {
		t.Errorf("%+v", p)
	}
	if p.Short() != "service web: CrashLoopBackOff (exit code 3)" {
		t.Errorf("short: %q", p.Short())
	}
}

func TestOOMKilledNamesTheLimit(t *testing.T) {
	cs := waiting("web", "CrashLoopBackOff", "")
	cs.RestartCount = 2
	cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}
	pd := pod("web-1", labelService, "web", cs)
	pd.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
	p := one(t, Pod(pd, now))
	if p.Reason != OOMKilled || p.MemoryLimit != "64Mi" || !strings.Contains(p.Message, "64Mi") || p.Short() != "service web: OOMKilled (limit 64Mi)" {
		t.Errorf("%+v", p)
	}
	// A Job's container is not restarted: the terminated state itself says it.
	job := pod("migrate-x", labelJob, "migrate", corev1.ContainerStatus{Name: "migrate",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}})
	if p := one(t, Pod(job, now)); p.Reason != OOMKilled || p.Kind != KindJob {
		t.Errorf("job: %+v", p)
	}
}

func TestUnschedulableQuotesTheScheduler(t *testing.T) {
	p := pod("web-1", labelService, "web")
	p.Status.Phase = corev1.PodPending
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/12 nodes are available: 12 node(s) didn't match\nPod's node affinity/selector."}}
	pr := one(t, Pod(p, now))
	if pr.Reason != Unschedulable || !strings.Contains(pr.Message, "0/12 nodes are available: 12 node(s) didn't match Pod's node affinity/selector.") {
		t.Errorf("%+v", pr)
	}
}

func TestReadinessFailingAfterTheProbeHadItsChance(t *testing.T) {
	cs := corev1.ContainerStatus{Name: "web", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now.Add(-5 * time.Second))}}}
	p := pod("web-1", labelService, "web", cs)
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(80)}},
		PeriodSeconds: 2, FailureThreshold: 2}
	pr := one(t, Pod(p, now))
	if pr.Reason != ReadinessFailing || !strings.Contains(pr.Message, "HTTP GET /healthz on port 80") {
		t.Errorf("%+v", pr)
	}
	// within period × threshold it may simply not have answered yet
	p.Spec.Containers[0].ReadinessProbe.PeriodSeconds = 10
	if ps := Pod(p, now); len(ps) != 0 {
		t.Errorf("in its grace: %+v", ps)
	}
	// ready, or no probe: nothing
	p.Spec.Containers[0].ReadinessProbe = nil
	if ps := Pod(p, now); len(ps) != 0 {
		t.Errorf("no probe: %+v", ps)
	}
}

func failedJobPod(name string, created time.Time, code int32) *corev1.Pod {
	p := pod(name, labelJob, "migrate", corev1.ContainerStatus{Name: "migrate",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: "Error"}}})
	p.CreationTimestamp = metav1.NewTime(created)
	p.Status.Phase = corev1.PodFailed
	if code == 0 {
		p.Status.Phase = corev1.PodSucceeded
	}
	return p
}

func TestJobFailedOnlyForTheNewestRun(t *testing.T) {
	old := failedJobPod("migrate-a", now.Add(-time.Hour), 1)
	ps := Environment([]*corev1.Pod{old}, nil, nil, now)
	p := one(t, ps)
	if p.Reason != JobFailed || *p.ExitCode != 1 || !p.WantLogs || p.PreviousLogs || p.Kind != KindJob {
		t.Errorf("%+v", p)
	}
	// a later run succeeded: the old failure is history
	if ps := Environment([]*corev1.Pod{old, failedJobPod("migrate-b", now.Add(-time.Minute), 0)}, nil, nil, now); len(ps) != 0 {
		t.Errorf("after a successful run: %+v", ps)
	}
}

func TestEnvironmentCountsPodsOfOneProblemOnce(t *testing.T) {
	mk := func(n string) *corev1.Pod { return pod(n, labelService, "web", waiting("web", "ImagePullBackOff", "")) }
	ps := Environment([]*corev1.Pod{mk("web-b"), mk("web-a"), pod("x", "unrelated", "y", waiting("x", "ImagePullBackOff", ""))}, nil, nil, now)
	if len(ps) != 2 || ps[0].Pods != 2 || ps[0].Pod != "web-a" || ps[0].Kind != KindService || ps[1].Kind != KindPod || ps[1].Pods != 1 {
		t.Errorf("want web's two pods as one problem, then pod x's: %+v", ps)
	}
}

func TestPVCPendingAfterGrace(t *testing.T) {
	class := "slow"
	c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", CreationTimestamp: metav1.NewTime(now.Add(-time.Minute))}}
	c.Spec.StorageClassName = &class
	c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	c.Status.Phase = corev1.ClaimPending
	p, ok := PVC(c, now)
	if !ok || p.Reason != PVCPending || !strings.Contains(p.Message, `"slow"`) || !strings.Contains(p.Message, "1Gi") {
		t.Errorf("%+v %v", p, ok)
	}
	if _, ok := PVC(c, c.CreationTimestamp.Add(PVCGrace/2)); ok {
		t.Error("a claim within its grace is a problem")
	}
	c.Status.Phase = corev1.ClaimBound
	if _, ok := PVC(c, now); ok {
		t.Error("a bound claim is a problem")
	}
}

func TestHealthyPodHasNoProblem(t *testing.T) {
	cs := corev1.ContainerStatus{Name: "web", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	if ps := Pod(pod("web-1", labelService, "web", cs), now); len(ps) != 0 {
		t.Errorf("%+v", ps)
	}
}

func TestSlimPodKeepsWhatPodReads(t *testing.T) {
	cs := waiting("web", "CrashLoopBackOff", "")
	cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}
	p := pod("web-1", labelService, "web", cs)
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("1")}
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "TOKEN", Value: "secret"}}
	p.Annotations = map[string]string{"big": strings.Repeat("x", 1000)}
	s, _ := SlimPod(p)
	sp := s.(*corev1.Pod)
	if sp.Spec.Containers[0].Env != nil || sp.Annotations != nil || sp.Labels["other"] != "" || len(sp.Spec.Containers[0].Resources.Limits) != 1 {
		t.Errorf("kept too much: %+v", sp)
	}
	if a, b := Pod(p, now), Pod(sp, now); len(a) != 1 || len(b) != 1 || a[0].Message != b[0].Message {
		t.Errorf("slim changes the diagnosis: %+v vs %+v", a, b)
	}
}

func TestLogLinesBounded(t *testing.T) {
	var b strings.Builder
	for i := range 30 {
		b.WriteString("line ")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString("\x1b[31m\r\n")
	}
	ls := LogLines([]byte(b.String()))
	if len(ls) != MaxLogLines || ls[len(ls)-1] != "line "+strings.Repeat("x", 29)+"[31m" {
		t.Errorf("%d lines, last %q", len(ls), ls[len(ls)-1])
	}
	long := LogLines([]byte(strings.Repeat("y", 10000) + "\n" + strings.Repeat("z", 10000)))
	total := 0
	for _, l := range long {
		total += len(l)
	}
	if total > MaxLogBytes || len(long) == 0 {
		t.Errorf("%d bytes in %d lines", total, len(long))
	}
	if LogLines(nil) != nil {
		t.Error("no log, lines")
	}
}

func TestSummary(t *testing.T) {
	code := int32(1)
	ps := []Problem{{Kind: KindService, Name: "web", Reason: ImagePullBackOff}, {Kind: KindJob, Name: "m", Reason: JobFailed, ExitCode: &code}, {Kind: KindVolume, Name: "d", Reason: PVCPending}}
	if s := Summary(ps, 2); s != "service web: ImagePullBackOff; job m: JobFailed (exit code 1); and 1 more" {
		t.Error(s)
	}
}

func TestDeploymentRefusedPods(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	d.Spec.Template.Labels = map[string]string{labelService: "web"}
	d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
		Message: `pods "web-1" is forbidden: exceeded quota: arbor-quota, requested: pods=1, used: pods=1, limited: pods=1`}}
	s, _ := SlimDeployment(d)
	p, ok := Deployment(s.(*appsv1.Deployment))
	if !ok || p.Reason != QuotaExceeded || p.Name != "web" || !strings.Contains(p.Message, "limited: pods=1") {
		t.Errorf("%+v %v", p, ok)
	}
	d.Status.Conditions[0].Message = `pods "web-1" is forbidden: violates PodSecurity "baseline:latest": privileged`
	s, _ = SlimDeployment(d)
	if p, ok := Deployment(s.(*appsv1.Deployment)); !ok || p.Reason != PodsRefused || !strings.Contains(p.Message, "violates PodSecurity") {
		t.Errorf("%+v %v", p, ok)
	}
	d.Status.Conditions[0].Status = corev1.ConditionFalse
	if p, ok := Deployment(d); ok {
		t.Errorf("a resolved failure: %+v", p)
	}
}

// owned is a pod of no arbor service or job (a chart's or kustomize
// directory's) whose controller is kind/name.
func owned(name, kind, owner, hash string, cs corev1.ContainerStatus) *corev1.Pod {
	p := pod(name, "app.kubernetes.io/name", "redis", cs)
	if hash != "" {
		p.Labels[labelPodTemplateHash] = hash
	}
	yes := true
	p.OwnerReferences = []metav1.OwnerReference{
		{APIVersion: "v1", Kind: "ConfigMap", Name: "not-the-controller", UID: "u0"},
		{APIVersion: "apps/v1", Kind: kind, Name: owner, UID: "u1", Controller: &yes},
	}
	return p
}

// A chart's or kustomize directory's pods are named by the workload that
// owns them: a Deployment through its ReplicaSet's name, a StatefulSet, a
// DaemonSet, a bare ReplicaSet; a pod nothing controls by itself. Slimmed
// pods say the same; arbor's service label still wins.
func TestChartPodsNamedByTheirWorkload(t *testing.T) {
	crash := waiting("redis", "CrashLoopBackOff", "")
	crash.RestartCount = 4
	crash.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}
	cases := []struct {
		pod        *corev1.Pod
		kind, name string
	}{
		{owned("cache-redis-5d8f7c9b4-x2x9q", "ReplicaSet", "cache-redis-5d8f7c9b4", "5d8f7c9b4", crash), KindDeployment, "cache-redis"},
		{owned("db-0", "StatefulSet", "db", "", crash), KindStatefulSet, "db"},
		{owned("agent-k2j3h", "DaemonSet", "agent", "", crash), KindDaemonSet, "agent"},
		{owned("rs-abcde", "ReplicaSet", "rs", "", crash), KindReplicaSet, "rs"},
		{pod("lonely", "app.kubernetes.io/name", "x", crash), KindPod, "lonely"},
	}
	for _, c := range cases {
		slim, _ := SlimPod(c.pod)
		for what, p := range map[string]*corev1.Pod{"pod": c.pod, "slim pod": slim.(*corev1.Pod)} {
			ps := Pod(p, now)
			if len(ps) != 1 || ps[0].Kind != c.kind || ps[0].Name != c.name || ps[0].Reason != CrashLoopBackOff || *ps[0].ExitCode != 3 || !ps[0].WantLogs {
				t.Errorf("%s %s: %+v; want %s %s CrashLoopBackOff", what, c.pod.Name, ps, c.kind, c.name)
			}
		}
	}
	if got := one(t, Pod(owned("web-1", "ReplicaSet", "web-5", "5", crash), now)).Short(); got != "deployment web: CrashLoopBackOff (exit code 3)" {
		t.Errorf("short form %q", got)
	}
	withService := owned("web-5-a", "ReplicaSet", "web-5", "5", crash)
	withService.Labels[labelService] = "web"
	if p := one(t, Pod(withService, now)); p.Kind != KindService || p.Name != "web" {
		t.Errorf("arbor's service pod named %s %s", p.Kind, p.Name)
	}
}

// A chart's Deployment whose pods the API server refuses is named by itself.
func TestChartDeploymentRefusedPods(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "cache-redis"}}
	d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
		Message: `pods "cache-redis-1" is forbidden: exceeded quota: arbor-quota`}}
	s, _ := SlimDeployment(d)
	if p, ok := Deployment(s.(*appsv1.Deployment)); !ok || p.Kind != KindDeployment || p.Name != "cache-redis" || p.Reason != QuotaExceeded {
		t.Errorf("%+v %v", p, ok)
	}
}
