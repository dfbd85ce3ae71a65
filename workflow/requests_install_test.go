package workflow

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/render"
)

// A deploy, extend or delete request through one install is refused on an
// environment another install created, and leaves its namespace as it was;
// through the install that created it, it is recorded.
func TestRequestsStayInTheirInstall(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ns := h.app + "-main"
	_, err := h.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{render.LabelManagedBy: render.ManagedByValue, render.LabelInstall: "green"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.cleanup(ns)
	now := time.Now()
	requests := map[string]func(install string) error{
		"deploy": func(install string) error { _, err := RequestDeploy(ctx, h.kube, ns, install, now); return err },
		"extend": func(install string) error { return RequestExtend(ctx, h.kube, ns, install, now.Add(time.Hour)) },
		"delete": func(install string) error { _, err := RequestDelete(ctx, h.kube, ns, install, "dev", now); return err },
	}
	for name, request := range requests {
		if err := request("blue"); !errors.Is(err, ErrNoEnvironment) {
			t.Errorf("%s through install blue on green's environment: %v, want ErrNoEnvironment", name, err)
		}
	}
	if a := h.annotations(ns); len(a) != 0 {
		t.Fatalf("refused requests left annotations %v", a)
	}
	for name, request := range requests {
		if err := request("green"); err != nil {
			t.Errorf("%s through install green: %v", name, err)
		}
	}
	a := h.annotations(ns)
	for _, k := range []string{AnnotationDeployRequested, AnnotationExpiresAt, AnnotationDeleteRequested} {
		if a[k] == "" {
			t.Errorf("annotation %s not recorded: %v", k, a)
		}
	}
}
