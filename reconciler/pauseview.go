package reconciler

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/arbordev/arbor/render"
)

// isRoute: an object that sends requests to the environment, which a
// pause points at the waking endpoint.
func isRoute(o *unstructured.Unstructured) bool {
	gk := o.GroupVersionKind().GroupKind()
	return (gk.Group == "networking.k8s.io" && gk.Kind == "Ingress") || (o.GetName() == wakeObjectName &&
		(gk.Kind == "Service" && gk.Group == "" || gk.Kind == "EndpointSlice" && gk.Group == "discovery.k8s.io"))
}

// pauseView returns env as it runs paused (env itself when not paused):
// Deployments and StatefulSets at zero replicas, CronJobs suspended, and,
// with waking on, every Ingress backend pointing at the waking Service
// that the view adds (with its EndpointSlice). hosts are the Ingresses'
// hosts. The render cache's objects are never changed: changed ones are copies.
func (r *Reconciler) pauseView(ctx context.Context, env *render.Environment, paused bool) (*render.Environment, []string, error) {
	if !paused {
		return env, nil, nil
	}
	waking := r.opts.Config.Server.Waking()
	view := *env
	view.Objects = make([]*unstructured.Unstructured, 0, len(env.Objects)+2)
	var hosts []string
	for _, o := range env.Objects {
		gk := o.GroupVersionKind().GroupKind()
		switch {
		case gk.Group == "apps" && (gk.Kind == "Deployment" || gk.Kind == "StatefulSet"):
			o = o.DeepCopy()
			_ = unstructured.SetNestedField(o.Object, int64(0), "spec", "replicas")
		case gk.Group == "batch" && gk.Kind == "CronJob":
			o = o.DeepCopy()
			_ = unstructured.SetNestedField(o.Object, true, "spec", "suspend")
		case waking && gk.Group == "networking.k8s.io" && gk.Kind == "Ingress":
			o = o.DeepCopy()
			hosts = append(hosts, routeToWaker(o)...)
		}
		view.Objects = append(view.Objects, o)
	}
	if len(hosts) == 0 && !hasIngress(env) {
		return &view, nil, nil
	}
	if waking {
		ip, port, err := r.wakeTarget(ctx)
		if err != nil {
			return nil, nil, err
		}
		view.Objects = append(view.Objects, wakeObjects(env, ip, port)...)
	}
	slices.Sort(hosts)
	return &view, slices.Compact(hosts), nil
}

func hasIngress(env *render.Environment) bool {
	return slices.ContainsFunc(env.Objects, func(o *unstructured.Unstructured) bool { return o.GetKind() == "Ingress" })
}

// routeToWaker points every backend of an Ingress at the waking Service
// and returns the hosts of its rules.
func routeToWaker(ing *unstructured.Unstructured) []string {
	backend := map[string]any{"service": map[string]any{"name": wakeObjectName, "port": map[string]any{"name": "http"}}}
	if _, ok, _ := unstructured.NestedMap(ing.Object, "spec", "defaultBackend"); ok {
		_ = unstructured.SetNestedField(ing.Object, backend, "spec", "defaultBackend")
	}
	rules, _, _ := unstructured.NestedSlice(ing.Object, "spec", "rules")
	var hosts []string
	for _, rr := range rules {
		rule, ok := rr.(map[string]any)
		if !ok {
			continue
		}
		if h, _ := rule["host"].(string); h != "" {
			hosts = append(hosts, strings.ToLower(h))
		}
		paths, _, _ := unstructured.NestedSlice(rule, "http", "paths")
		for _, pp := range paths {
			if p, ok := pp.(map[string]any); ok {
				p["backend"] = runtime.DeepCopyJSON(backend)
			}
		}
		if len(paths) > 0 {
			_ = unstructured.SetNestedSlice(rule, paths, "http", "paths")
		}
	}
	_ = unstructured.SetNestedSlice(ing.Object, rules, "spec", "rules")
	return hosts
}

// wakeObjects are the waking route in env's namespace: a Service without a
// selector and its EndpointSlice, whose one endpoint is the cluster IP of
// arbor's waking Service. Ingress controllers (ingress-nginx, Traefik) send
// traffic to a Service's endpoints themselves, so they reach arbor in its
// own namespace with no ExternalName Service and no controller flag.
func wakeObjects(env *render.Environment, ip string, port int32) []*unstructured.Unstructured {
	labels := map[string]any{}
	if len(env.Objects) > 0 {
		for _, k := range []string{render.LabelManagedBy, render.LabelInstall, render.LabelApp, render.LabelEnv} {
			if v, ok := env.Objects[0].GetLabels()[k]; ok {
				labels[k] = v
			}
		}
	}
	svc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": wakeObjectName, "namespace": env.Namespace, "labels": labels},
		"spec": map[string]any{"type": "ClusterIP", "ports": []any{
			map[string]any{"name": "http", "port": int64(80), "protocol": "TCP", "targetPort": int64(port)},
		}},
	}}
	sliceLabels := runtime.DeepCopyJSON(labels)
	sliceLabels["kubernetes.io/service-name"] = wakeObjectName
	sliceLabels["endpointslice.kubernetes.io/managed-by"] = "arbor.dev"
	family := "IPv4"
	if parsed := net.ParseIP(ip); parsed != nil && parsed.To4() == nil {
		family = "IPv6"
	}
	slice := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
		"metadata":    map[string]any{"name": wakeObjectName, "namespace": env.Namespace, "labels": sliceLabels},
		"addressType": family,
		"endpoints":   []any{map[string]any{"addresses": []any{ip}, "conditions": map[string]any{"ready": true}}},
		"ports":       []any{map[string]any{"name": "http", "port": int64(port), "protocol": "TCP"}},
	}}
	return []*unstructured.Unstructured{svc, slice}
}

// wakeTarget returns the cluster IP and port (named "wake") of arbor's
// waking Service, read once.
func (r *Reconciler) wakeTarget(ctx context.Context) (string, int32, error) {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	if r.wakeIP != "" {
		return r.wakeIP, r.wakePort, nil
	}
	ns, name := r.opts.Config.Namespace, r.opts.Config.Server.WakeService
	svc, err := r.opts.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", 0, fmt.Errorf("server.wake_service: Service %s/%s: %w", ns, name, err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return "", 0, fmt.Errorf("server.wake_service: Service %s/%s has no cluster IP: paused environments cannot route to the waking endpoint", ns, name)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == wakePortName {
			r.wakeIP, r.wakePort = svc.Spec.ClusterIP, p.Port
			return r.wakeIP, r.wakePort, nil
		}
	}
	return "", 0, fmt.Errorf("server.wake_service: Service %s/%s has no port named %s (to server.wake_listen): paused environments cannot route to the waking endpoint", ns, name, wakePortName)
}
