package traffic

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Endpoints returns the metrics URL of every ready endpoint of the Service
// namespace/name, on port (a port name, or a number), at path, sorted; an
// ingress controller's replicas count requests each on their own, so each
// is read. More than max endpoints is an error (nothing is read then).
func Endpoints(ctx context.Context, kube kubernetes.Interface, namespace, name, port, path string, max int) ([]string, error) {
	l, err := kube.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return nil, fmt.Errorf("list the endpoints of service %s/%s: %w", namespace, name, err)
	}
	var out []string
	for _, s := range l.Items {
		num, ok := portOf(s, port)
		if !ok {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				out = append(out, "http://"+net.JoinHostPort(a, strconv.Itoa(int(num)))+path)
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > max {
		return nil, fmt.Errorf("service %s/%s has %d ready endpoints, more than the %d read", namespace, name, len(out), max)
	}
	return out, nil
}

// portOf finds port (a name, or a number) among the slice's ports.
func portOf(s discoveryv1.EndpointSlice, port string) (int32, bool) {
	n, err := strconv.Atoi(port)
	for _, p := range s.Ports {
		if p.Port == nil {
			continue
		}
		if (err == nil && int(*p.Port) == n) || (p.Name != nil && *p.Name == port) {
			return *p.Port, true
		}
	}
	return 0, false
}
