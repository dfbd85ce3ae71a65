package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// kubeconfigToken is the bearer token the kubeconfig's user sends to the
// API server, or "" (a user with client certificates has none to pass on).
// It is read by sending one request through client-go's own authentication
// wrappers to a round tripper that keeps the header and goes nowhere, so a
// token file or an exec plugin (cloud logins, OIDC) gives its token too.
func kubeconfigToken(cfg *rest.Config) string {
	var token string
	capture := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if h := r.Header.Get("Authorization"); len(h) > len("Bearer ") && strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
			token = strings.TrimSpace(h[len("Bearer "):])
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	rt, err := rest.HTTPWrappersForConfig(cfg, capture)
	if err != nil {
		return ""
	}
	req, err := http.NewRequest(http.MethodGet, "https://kubeconfig.invalid/", nil)
	if err != nil {
		return ""
	}
	if resp, err := rt.RoundTrip(req); err == nil {
		resp.Body.Close()
	}
	return token
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// portForward forwards a local port to the http port of a ready pod behind
// arbor's Service, as kubectl port-forward svc/NAME does, and returns the
// local address and a func that stops the forward.
func portForward(ctx context.Context, cfg *rest.Config, namespace, service string) (string, func(), error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", nil, err
	}
	svc, err := cs.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("find the daemon: Service %s/%s: %w (or give --server)", namespace, service, err)
	}
	if len(svc.Spec.Ports) == 0 || len(svc.Spec.Selector) == 0 {
		return "", nil, fmt.Errorf("find the daemon: Service %s/%s has no ports or no selector", namespace, service)
	}
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return "", nil, fmt.Errorf("find the daemon's pods: %w", err)
	}
	pod := readyPod(pods.Items)
	if pod == nil {
		return "", nil, fmt.Errorf("find the daemon: no ready pod behind Service %s/%s", namespace, service)
	}
	port, err := targetPort(pod, apiPort(svc).TargetPort)
	if err != nil {
		return "", nil, err
	}
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return "", nil, err
	}
	u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod.Name).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return "", nil, err
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		return "", nil, fmt.Errorf("port-forward to pod %s/%s: %w", namespace, pod.Name, errors.Join(err, errors.New("forward ended")))
	case <-ctx.Done():
		close(stop)
		return "", nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		close(stop)
		return "", nil, fmt.Errorf("port-forward to pod %s/%s: no local port: %w", namespace, pod.Name, err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0].Local), func() { close(stop) }, nil
}

// readyPod picks a ready pod. Any replica answers the API: the status is
// the records in the cluster, overlaid by the owner of each app with what
// it knows in memory (docs/clusters.md), and actions are recorded in the
// cluster for the owner to act on.
func readyPod(pods []corev1.Pod) *corev1.Pod {
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(p) {
			return p
		}
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// apiPort is the Service's port of the daemon's API: the one named http
// (deploy/base/service.yaml), else the first. The Service has a wake port
// too, which serves nothing but the waking page.
func apiPort(svc *corev1.Service) corev1.ServicePort {
	for _, p := range svc.Spec.Ports {
		if p.Name == "http" {
			return p
		}
	}
	return svc.Spec.Ports[0]
}

// targetPort resolves a Service's target port (a number or a container
// port's name) on pod.
func targetPort(pod *corev1.Pod, tp intstr.IntOrString) (int32, error) {
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return 0, errors.New("the arbor Service has no target port")
		}
		return tp.IntVal, nil
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == tp.StrVal {
				return p.ContainerPort, nil
			}
		}
	}
	return 0, fmt.Errorf("pod %s has no port named %q", pod.Name, tp.StrVal)
}
