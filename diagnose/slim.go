package diagnose

import (
	"strings"
	"unicode"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SlimPod is an informer transform: it keeps of a pod only what Pod reads
// (its service or job label, its controller's kind and name and its
// pod-template-hash label, the containers' names, images, memory limits
// and readiness probes, the scheduling and readiness conditions and the
// container states), so that a daemon watching thousands of pods holds
// little of each.
func SlimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone: left as it is
	}
	out := &corev1.Pod{ObjectMeta: slimMeta(&p.ObjectMeta, labelService, labelJob, labelPodTemplateHash)}
	if c := metav1.GetControllerOfNoCopy(p); c != nil {
		// the owner names a chart's or kustomize directory's workload
		out.OwnerReferences = []metav1.OwnerReference{{Kind: c.Kind, Name: c.Name, Controller: c.Controller}}
	}
	out.Spec.InitContainers = slimContainers(p.Spec.InitContainers)
	out.Spec.Containers = slimContainers(p.Spec.Containers)
	out.Status.Phase = p.Status.Phase
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled || c.Type == corev1.PodReady {
			c.LastProbeTime = metav1.Time{}
			out.Status.Conditions = append(out.Status.Conditions, c)
		}
	}
	out.Status.InitContainerStatuses = slimStatuses(p.Status.InitContainerStatuses)
	out.Status.ContainerStatuses = slimStatuses(p.Status.ContainerStatuses)
	return out, nil
}

// SlimPVC is SlimPod for claims: name, phase, class and requested size.
func SlimPVC(obj any) (any, error) {
	c, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return obj, nil
	}
	out := &corev1.PersistentVolumeClaim{ObjectMeta: slimMeta(&c.ObjectMeta)}
	out.Spec.StorageClassName = c.Spec.StorageClassName
	if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		out.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: q}
	}
	out.Status.Phase = c.Status.Phase
	return out, nil
}

// SlimDeployment is SlimPod for Deployments: its service (from the pod
// template's label), its ReplicaFailure condition, and what a rollout's
// readiness is read from (generation, replicas, the status counts, the
// Progressing and Available conditions), so that the daemon waits for a
// rollout from this watch instead of one of its own per Deployment.
func SlimDeployment(obj any) (any, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return obj, nil
	}
	out := &appsv1.Deployment{ObjectMeta: slimMeta(&d.ObjectMeta)}
	out.Generation = d.Generation
	if s, ok := d.Spec.Template.Labels[labelService]; ok {
		out.Labels = map[string]string{labelService: s}
	}
	out.Spec.Replicas, out.Spec.Paused = d.Spec.Replicas, d.Spec.Paused
	out.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Status.ObservedGeneration, Replicas: d.Status.Replicas,
		UpdatedReplicas: d.Status.UpdatedReplicas, ReadyReplicas: d.Status.ReadyReplicas,
		AvailableReplicas: d.Status.AvailableReplicas, UnavailableReplicas: d.Status.UnavailableReplicas}
	for _, c := range d.Status.Conditions {
		switch c.Type {
		case appsv1.DeploymentReplicaFailure, appsv1.DeploymentProgressing, appsv1.DeploymentAvailable:
			c.LastUpdateTime = metav1.Time{}
			out.Status.Conditions = append(out.Status.Conditions, c)
		}
	}
	return out, nil
}

func slimMeta(m *metav1.ObjectMeta, keep ...string) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp}
	for _, k := range keep {
		if v, ok := m.Labels[k]; ok {
			if out.Labels == nil {
				out.Labels = map[string]string{}
			}
			out.Labels[k] = v
		}
	}
	return out
}

func slimContainers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name, Image: c.Image, ReadinessProbe: c.ReadinessProbe}
		if l, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			out[i].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: l}
		}
	}
	return out
}

func slimStatuses(ss []corev1.ContainerStatus) []corev1.ContainerStatus {
	if len(ss) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(ss))
	for i, s := range ss {
		out[i] = corev1.ContainerStatus{Name: s.Name, Image: s.Image, Ready: s.Ready, RestartCount: s.RestartCount,
			State: s.State, LastTerminationState: s.LastTerminationState}
	}
	return out
}

// maxLineBytes bounds one log line kept.
const maxLineBytes = 512

// LogLines turns the tail of a container's log into at most MaxLogLines
// printable lines of at most MaxLogBytes in all, keeping the last ones: no
// control characters (a terminal escape in a log does nothing on the page or
// in a comment), invalid UTF-8 dropped, long lines cut.
func LogLines(b []byte) []string {
	raw := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(raw) == 1 && raw[0] == "" {
		return nil
	}
	var out []string
	total := 0
	for i := len(raw) - 1; i >= 0 && len(out) < MaxLogLines; i-- {
		l := clean(raw[i])
		if total+len(l) > MaxLogBytes {
			break
		}
		total += len(l)
		out = append(out, l)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func clean(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return -1
		}
		return r
	}, s)
	if len(s) > maxLineBytes {
		s = strings.ToValidUTF8(s[:maxLineBytes], "") + "…"
	}
	return s
}
