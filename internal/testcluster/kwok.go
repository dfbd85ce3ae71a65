package testcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// kwok runs no containers: what a fake pod's container "logs", and where a
// port-forward to it goes, are kwok resources (kwok.x-k8s.io/v1alpha1 Logs
// and PortForward, named after the pod), which hack/cluster.sh enables.
var (
	kwokLogs        = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}
	kwokPortForward = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "portforwards"}
)

// PodLogs makes the containers of pod ns/name "log" lines, as the kubelet
// serves them (kubectl logs, the pods/log API). The file kwok reads is
// written in the CRI log format, in t's temporary directory; its path is
// returned for AppendPodLog (a followed log streams what is appended).
func PodLogs(t testing.TB, ns, pod string, containers []string, lines ...string) string {
	t.Helper()
	var b strings.Builder
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, l := range lines {
		fmt.Fprintf(&b, "%s stdout F %s\n", at.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), l)
	}
	file := filepath.Join(t.TempDir(), pod+".log")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cs := make([]any, len(containers))
	for i, c := range containers {
		cs[i] = c
	}
	createKwok(t, kwokLogs, "Logs", ns, pod, map[string]any{"logs": []any{map[string]any{"containers": cs, "logsFile": file}}})
	return file
}

// AppendPodLog adds a line to a log file PodLogs wrote.
func AppendPodLog(t testing.TB, file, line string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), line); err != nil {
		t.Fatal(err)
	}
}

// PodPortForward makes a port-forward to port of pod ns/name reach target
// ("127.0.0.1:8080"), as kubectl port-forward would reach the container.
func PodPortForward(t testing.TB, ns, pod string, port int32, targetHost string, targetPort int32) {
	t.Helper()
	createKwok(t, kwokPortForward, "PortForward", ns, pod, map[string]any{"forwards": []any{map[string]any{
		"ports": []any{int64(port)}, "target": map[string]any{"address": targetHost, "port": int64(targetPort)},
	}}})
}

func createKwok(t testing.TB, gvr schema.GroupVersionResource, kind, ns, name string, spec map[string]any) {
	t.Helper()
	dc, err := dynamic.NewForConfig(Config(t))
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gvr.GroupVersion().String(), "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     spec,
	}}
	if _, err := dc.Resource(gvr).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create kwok %s %s/%s (does the cluster enable kwok's CRDs? hack/cluster.sh down, then up): %v", kind, ns, name, err)
	}
}
