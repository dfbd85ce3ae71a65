package traffic_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/arbordev/arbor/internal/testcluster"
	"github.com/arbordev/arbor/traffic"
)

// The endpoints read are the Service's ready ones, on the named port, from
// every EndpointSlice of the Service and of no other; more than the bound
// is an error.
func TestEndpointsFromEndpointSlices(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	ctx := context.Background()
	slice := func(name, svc string, port int32, eps ...discoveryv1.Endpoint) {
		s := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](80)}, {Name: ptr.To("metrics"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
			Endpoints:   eps,
		}
		if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ep := func(ip string, ready *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	}
	slice("ctl-a", "ctl", 10254, ep("10.1.0.1", ptr.To(true)), ep("10.1.0.2", ptr.To(false)), ep("10.1.0.3", nil))
	slice("ctl-b", "ctl", 10254, ep("10.1.0.4", ptr.To(true)))
	slice("other", "not-ctl", 10254, ep("10.9.9.9", ptr.To(true)))

	got, err := traffic.Endpoints(ctx, cs, ns, "ctl", "metrics", "/metrics", 8)
	if err != nil {
		t.Fatal(err)
	}
	want := "http://10.1.0.1:10254/metrics http://10.1.0.3:10254/metrics http://10.1.0.4:10254/metrics"
	if strings.Join(got, " ") != want {
		t.Errorf("endpoints %v, want %s", got, want)
	}
	if got, err := traffic.Endpoints(ctx, cs, ns, "ctl", "10254", "/m", 8); err != nil || len(got) != 3 || got[0] != "http://10.1.0.1:10254/m" {
		t.Errorf("by port number: %v, %v", got, err)
	}
	if _, err := traffic.Endpoints(ctx, cs, ns, "ctl", "metrics", "/metrics", 2); err == nil || !strings.Contains(err.Error(), "3 ready endpoints") {
		t.Errorf("over the bound: %v", err)
	}
}
