// Package diagnose says why an environment's workloads are not ready, in
// words a developer acts on, from its pods, PersistentVolumeClaims and
// Deployments as the API server shows them: an image that cannot be
// pulled, a container that keeps crashing or is killed for memory, a pod no
// node can take, a failing readiness probe, a failed Job, a claim no volume
// binds, pods the API server refuses. A pod of arbor's own services and
// jobs is named by their name in .release.yaml; any other (a chart's, a
// kustomize directory's) by the workload that owns it.
//
// It is pure: no client, no clock of its own. The daemon feeds it the
// objects its watches hold (trimmed by SlimPod, SlimPVC and SlimDeployment) and adds the
// last log lines of the containers a problem names (Problem.Logs).
package diagnose

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reason is a problem's kind: a fixed set, so that it can label a metric.
type Reason string

// The reasons, with the state of the pod, claim or environment behind each.
const (
	ImagePullBackOff Reason = "ImagePullBackOff" // the kubelet backs off pulling an image
	ErrImagePull     Reason = "ErrImagePull"     // an image pull failed (or the name is invalid)
	CrashLoopBackOff Reason = "CrashLoopBackOff" // a container keeps exiting
	OOMKilled        Reason = "OOMKilled"        // a container was killed at its memory limit
	Unschedulable    Reason = "Unschedulable"    // the scheduler finds no node for a pod
	ReadinessFailing Reason = "ReadinessFailing" // a running container's readiness probe fails
	JobFailed        Reason = "JobFailed"        // a Job's pod exited with an error
	PVCPending       Reason = "PVCPending"       // a claim stays unbound
	ContainerError   Reason = "ContainerError"   // a container cannot be created or started
	QuotaExceeded    Reason = "QuotaExceeded"    // the namespace's ResourceQuota refuses a service's pods
	PodsRefused      Reason = "PodsRefused"      // the API server refuses a service's pods (Pod Security, a webhook...)
	// WaitingForSlot: the app already runs its max_environments; this
	// branch waits for one to go away (set by the daemon, not found here).
	WaitingForSlot Reason = "WaitingForSlot"
)

// Reasons is every Reason, in a fixed order.
var Reasons = []Reason{ImagePullBackOff, ErrImagePull, CrashLoopBackOff, OOMKilled, Unschedulable,
	ReadinessFailing, JobFailed, PVCPending, ContainerError, QuotaExceeded, PodsRefused, WaitingForSlot}

// Workload kinds a Problem names: arbor's own services and jobs (by their
// name in .release.yaml), claims, and the workloads of a chart or kustomize
// directory, named by the object that owns their pods (a Deployment's pods
// belong to a ReplicaSet of it; a pod no controller owns is named itself).
const (
	KindService     = "service"
	KindJob         = "job"
	KindVolume      = "volume"
	KindDeployment  = "deployment"
	KindStatefulSet = "statefulset"
	KindDaemonSet   = "daemonset"
	KindReplicaSet  = "replicaset"
	KindPod         = "pod"
)

// The pod labels that name a pod's service or job (render's LabelService and
// LabelJob; this package imports no arbor package), and the one the
// Deployment controller puts on the pods of each ReplicaSet (its name's suffix).
const (
	labelService         = "arbor.dev/service"
	labelJob             = "arbor.dev/job"
	labelPodTemplateHash = "pod-template-hash"
)

// MaxLogLines and MaxLogBytes bound the log lines kept for one problem.
const (
	MaxLogLines = 20
	MaxLogBytes = 4 << 10
)

// Problem is one reason a service, job or volume is not ready.
type Problem struct {
	Kind    string `json:"kind"` // service, job, volume, or deployment, statefulset, daemonset, replicaset, pod
	Name    string `json:"name"` // the service's or job's name in .release.yaml, the claim's, or the workload object's
	Reason  Reason `json:"reason"`
	Message string `json:"message"` // what happened and what to look at, in one or two sentences
	// Pod and Container are where it shows (the first pod by name when
	// several do); Pods counts the pods that show it.
	Pod       string `json:"pod,omitempty"`
	Container string `json:"container,omitempty"`
	Pods      int    `json:"pods,omitempty"`
	Image     string `json:"image,omitempty"`
	ExitCode  *int32 `json:"exitCode,omitempty"`
	Restarts  int32  `json:"restarts,omitempty"`
	// MemoryLimit is the container's limit, for OOMKilled ("" when none).
	MemoryLimit string `json:"memoryLimit,omitempty"`
	// Logs are the container's last lines (at most MaxLogLines), once the
	// daemon has read them.
	Logs []string `json:"logs,omitempty"`
	// Since is when the problem began, as far as the objects say.
	Since time.Time `json:"since,omitzero"`

	// WantLogs: the container's log explains the problem; PreviousLogs: the
	// log of its previous run (a container waiting to restart has none yet).
	WantLogs     bool `json:"-"`
	PreviousLogs bool `json:"-"`
}

// LogKey names the log a problem wants: the container run it points at.
func (p Problem) LogKey(namespace string) string {
	return fmt.Sprintf("%s/%s/%s/%d/%t", namespace, p.Pod, p.Container, p.Restarts, p.PreviousLogs)
}

// Short is the problem in a few words: "service web: CrashLoopBackOff (exit code 3)".
func (p Problem) Short() string {
	s := p.Kind + " " + p.Name + ": " + string(p.Reason)
	switch {
	case p.Reason == OOMKilled && p.MemoryLimit != "":
		s += " (limit " + p.MemoryLimit + ")"
	case p.ExitCode != nil:
		s += fmt.Sprintf(" (exit code %d)", *p.ExitCode)
	}
	return s
}

// Summary joins the first n problems' Short forms, saying how many more there are.
func Summary(ps []Problem, n int) string {
	parts := make([]string, 0, min(n, len(ps))+1)
	for i, p := range ps {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(ps)-n))
			break
		}
		parts = append(parts, p.Short())
	}
	return strings.Join(parts, "; ")
}

// Environment diagnoses an environment from its pods and claims at now:
// one Problem per workload, reason and container, the pods showing it
// counted, sorted by kind and name. Of each job only the newest pod counts
// (an older run's failure is not this run's).
func Environment(pods []*corev1.Pod, pvcs []*corev1.PersistentVolumeClaim, deployments []*appsv1.Deployment, now time.Time) []Problem {
	var out []Problem
	index := map[string]int{}
	add := func(p Problem) {
		k := p.Kind + "\x00" + p.Name + "\x00" + string(p.Reason) + "\x00" + p.Container
		if i, ok := index[k]; ok {
			out[i].Pods++
			return
		}
		p.Pods = 1
		index[k] = len(out)
		out = append(out, p)
	}
	sorted := append([]*corev1.Pod(nil), pods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	newestJob := newestJobPods(sorted)
	for _, p := range sorted {
		if job := p.Labels[labelJob]; job != "" && newestJob[job] != p {
			continue
		}
		for _, pr := range Pod(p, now) {
			add(pr)
		}
	}
	for _, c := range pvcs {
		if pr, ok := PVC(c, now); ok {
			add(pr)
		}
	}
	for _, d := range deployments {
		if pr, ok := Deployment(d); ok {
			add(pr)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return kindOrder(out[i].Kind) < kindOrder(out[j].Kind)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func kindOrder(k string) int {
	switch k {
	case KindService:
		return 0
	case KindJob:
		return 1
	case KindVolume:
		return 3
	}
	return 2 // a chart's or kustomize directory's workloads
}

// newestJobPods returns each job's newest pod (by creation, then name).
func newestJobPods(pods []*corev1.Pod) map[string]*corev1.Pod {
	out := map[string]*corev1.Pod{}
	for _, p := range pods {
		job := p.Labels[labelJob]
		if job == "" {
			continue
		}
		if cur, ok := out[job]; !ok || cur.CreationTimestamp.Before(&p.CreationTimestamp) ||
			(cur.CreationTimestamp.Equal(&p.CreationTimestamp) && cur.Name < p.Name) {
			out[job] = p
		}
	}
	return out
}

// workload returns the kind and name of what a pod runs: arbor's service or
// job, else (a chart's or kustomize directory's pod) the workload that owns
// it, else the pod itself.
func workload(p *corev1.Pod) (kind, name string) {
	if s := p.Labels[labelService]; s != "" {
		return KindService, s
	}
	if j := p.Labels[labelJob]; j != "" {
		return KindJob, j
	}
	owner := metav1.GetControllerOfNoCopy(p)
	if owner == nil {
		return KindPod, p.Name
	}
	switch owner.Kind {
	case "ReplicaSet":
		// the Deployment controller names its ReplicaSets NAME-HASH
		if h := p.Labels[labelPodTemplateHash]; h != "" && strings.HasSuffix(owner.Name, "-"+h) {
			return KindDeployment, strings.TrimSuffix(owner.Name, "-"+h)
		}
		return KindReplicaSet, owner.Name
	case "StatefulSet":
		return KindStatefulSet, owner.Name
	case "DaemonSet":
		return KindDaemonSet, owner.Name
	case "Job":
		return KindJob, owner.Name
	}
	return strings.ToLower(owner.Kind), owner.Name
}
