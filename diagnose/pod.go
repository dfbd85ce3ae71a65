package diagnose

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// PVCGrace is how long a claim may stay Pending before it is a problem:
// a provisioner takes a moment to make a volume.
const PVCGrace = 10 * time.Second

// Pod returns the problems one pod shows at now: none for a healthy pod,
// one still starting, or one being deleted.
func Pod(p *corev1.Pod, now time.Time) []Problem {
	if p.DeletionTimestamp != nil {
		return nil
	}
	kind, name := workload(p)
	base := Problem{Kind: kind, Name: name, Pod: p.Name}
	if c := condition(p, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
		pr := base
		pr.Reason, pr.Since = Unschedulable, c.LastTransitionTime.Time
		pr.Message = "no node can run the pod; the scheduler says: " + oneLine(c.Message)
		return []Problem{pr}
	}
	var out []Problem
	statuses := append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for i := range statuses {
		cs := &statuses[i]
		spec := container(p, cs.Name)
		if pr, ok := containerProblem(base, p, cs, spec, now); ok {
			out = append(out, pr)
		}
	}
	return out
}

// containerProblem diagnoses one container's status.
func containerProblem(base Problem, p *corev1.Pod, cs *corev1.ContainerStatus, spec *corev1.Container, now time.Time) (Problem, bool) {
	pr := base
	pr.Container, pr.Image, pr.Restarts = cs.Name, cs.Image, cs.RestartCount
	if spec != nil {
		pr.Image = spec.Image // the reference as written, not the runtime's resolved name
		if l, ok := spec.Resources.Limits[corev1.ResourceMemory]; ok {
			pr.MemoryLimit = l.String()
		}
	}
	if w := cs.State.Waiting; w != nil {
		return waitingProblem(pr, cs, w)
	}
	if t := cs.State.Terminated; t != nil {
		return terminatedProblem(pr, p, t)
	}
	if r := cs.State.Running; r != nil && !cs.Ready && spec != nil && spec.ReadinessProbe != nil {
		if now.Sub(r.StartedAt.Time) < probeGrace(spec.ReadinessProbe) {
			return pr, false
		}
		pr.Reason, pr.Since = ReadinessFailing, r.StartedAt.Time
		pr.Message = fmt.Sprintf("container %s is running but its readiness probe (%s) fails, so it gets no traffic; check that the app answers there",
			cs.Name, oneLine(describeProbe(spec.ReadinessProbe)))
		return pr, true
	}
	return pr, false
}

func waitingProblem(pr Problem, cs *corev1.ContainerStatus, w *corev1.ContainerStateWaiting) (Problem, bool) {
	switch w.Reason {
	case "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull":
		pr.Reason = ErrImagePull
		if w.Reason == "ImagePullBackOff" {
			pr.Reason = ImagePullBackOff
		}
		pr.Message = fmt.Sprintf("image %s cannot be pulled; check its name, tag and the registry's credentials", pr.Image)
		if w.Message != "" {
			pr.Message += ": " + oneLine(w.Message)
		}
		return pr, true
	case "CrashLoopBackOff":
		last := cs.LastTerminationState.Terminated
		if last != nil && last.Reason == "OOMKilled" {
			return oomProblem(pr, last), true
		}
		pr.Reason, pr.WantLogs, pr.PreviousLogs = CrashLoopBackOff, true, true
		pr.Message = fmt.Sprintf("container %s keeps exiting and is restarted with a growing delay (%d restarts)", cs.Name, cs.RestartCount)
		if last != nil {
			code := last.ExitCode
			pr.ExitCode, pr.Since = &code, last.FinishedAt.Time
			pr.Message = fmt.Sprintf("container %s keeps exiting with code %d and is restarted with a growing delay (%d restarts); its last log lines say why",
				cs.Name, code, cs.RestartCount)
		}
		return pr, true
	case "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "PreCreateHookError", "PostStartHookError":
		pr.Reason = ContainerError
		pr.Message = fmt.Sprintf("container %s cannot start (%s)", cs.Name, w.Reason)
		if w.Message != "" {
			pr.Message += ": " + oneLine(w.Message)
		}
		return pr, true
	}
	return pr, false
}

func terminatedProblem(pr Problem, p *corev1.Pod, t *corev1.ContainerStateTerminated) (Problem, bool) {
	if t.Reason == "OOMKilled" {
		return oomProblem(pr, t), true
	}
	if pr.Kind != KindJob || t.ExitCode == 0 || p.Status.Phase != corev1.PodFailed {
		return pr, false
	}
	code := t.ExitCode
	pr.Reason, pr.ExitCode, pr.Since, pr.WantLogs = JobFailed, &code, t.FinishedAt.Time, true
	pr.Message = fmt.Sprintf("job %s failed: container %s exited with code %d; its last log lines say why", pr.Name, pr.Container, code)
	return pr, true
}

func oomProblem(pr Problem, t *corev1.ContainerStateTerminated) Problem {
	code := t.ExitCode
	pr.Reason, pr.ExitCode, pr.Since = OOMKilled, &code, t.FinishedAt.Time
	if pr.MemoryLimit != "" {
		pr.Message = fmt.Sprintf("container %s was killed for using more memory than its limit of %s (%d restarts); raise its memory or make it use less",
			pr.Container, pr.MemoryLimit, pr.Restarts)
	} else {
		pr.Message = fmt.Sprintf("container %s was killed for lack of memory (%d restarts); it has no memory limit, so the node ran out",
			pr.Container, pr.Restarts)
	}
	return pr
}

// PVC returns the problem of a claim still Pending PVCGrace after it was made.
func PVC(c *corev1.PersistentVolumeClaim, now time.Time) (Problem, bool) {
	if c.Status.Phase != corev1.ClaimPending || c.DeletionTimestamp != nil || now.Sub(c.CreationTimestamp.Time) < PVCGrace {
		return Problem{}, false
	}
	class := "the cluster's default"
	if c.Spec.StorageClassName != nil {
		class = fmt.Sprintf("%q", *c.Spec.StorageClassName)
	}
	size := ""
	if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		size = " for " + q.String()
	}
	return Problem{
		Kind: KindVolume, Name: c.Name, Reason: PVCPending, Since: c.CreationTimestamp.Time,
		Message: fmt.Sprintf("volume claim %s%s is not bound to a volume; check that storage class %s exists and that a provisioner serves it",
			c.Name, size, class),
	}, true
}

// Deployment returns the problem of a service whose pods are not even
// created: the Deployment's ReplicaFailure condition, which carries the API
// server's refusal (a used-up ResourceQuota, Pod Security).
func Deployment(d *appsv1.Deployment) (Problem, bool) {
	if d.DeletionTimestamp != nil {
		return Problem{}, false
	}
	kind, name := KindService, d.Labels[labelService]
	if name == "" {
		kind, name = KindDeployment, d.Name // a chart's or kustomize directory's
	}
	for _, c := range d.Status.Conditions {
		if c.Type != appsv1.DeploymentReplicaFailure || c.Status != corev1.ConditionTrue {
			continue
		}
		pr := Problem{Kind: kind, Name: name, Reason: PodsRefused, Since: c.LastTransitionTime.Time}
		pr.Message = "the API server refuses the service's pods: " + oneLine(c.Message)
		if strings.Contains(c.Message, "exceeded quota") {
			pr.Reason = QuotaExceeded
			pr.Message = "the environment's ResourceQuota has no room for the service's pods; lower what the services ask for or raise resource_quota: " + oneLine(c.Message)
		}
		return pr, true
	}
	return Problem{}, false
}

func condition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func container(p *corev1.Pod, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// probeGrace is how long a started container may be unready before its
// probe has had the chance to fail failureThreshold times.
func probeGrace(p *corev1.Probe) time.Duration {
	period, threshold := p.PeriodSeconds, p.FailureThreshold
	if period <= 0 {
		period = 10
	}
	if threshold <= 0 {
		threshold = 3
	}
	return time.Duration(p.InitialDelaySeconds+period*threshold) * time.Second
}

func describeProbe(p *corev1.Probe) string {
	switch {
	case p.HTTPGet != nil:
		return fmt.Sprintf("HTTP GET %s on port %s", p.HTTPGet.Path, p.HTTPGet.Port.String())
	case p.TCPSocket != nil:
		return "TCP connect to port " + p.TCPSocket.Port.String()
	case p.Exec != nil:
		return "command " + strings.Join(p.Exec.Command, " ")
	case p.GRPC != nil:
		return fmt.Sprintf("gRPC on port %d", p.GRPC.Port)
	}
	return "unknown"
}

// oneLine keeps a message from the API server on one bounded line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const limit = 500
	if len(s) > limit {
		s = strings.ToValidUTF8(s[:limit], "") + "…"
	}
	return s
}
