package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// TestKubeconfigToken: the token the kubeconfig's user would send, from the
// kubeconfig itself, a token file, or none for a user without one.
func TestKubeconfigToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  rest.Config
		want string
	}{
		{"token", rest.Config{Host: "https://k8s.invalid", BearerToken: "tok-1"}, "tok-1"},
		{"token file", rest.Config{Host: "https://k8s.invalid", BearerTokenFile: file}, "from-a-file"},
		{"basic auth is not passed on", rest.Config{Host: "https://k8s.invalid", Username: "u", Password: "p"}, ""},
		{"none", rest.Config{Host: "https://k8s.invalid"}, ""},
	} {
		if got := kubeconfigToken(&c.cfg); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestLogsPath(t *testing.T) {
	for arg, want := range map[string]string{
		"service/web": "services/web", "job/migrate": "jobs/migrate", "workflow": "workflow", "build": "build",
		"service/a b": "services/a%20b",
	} {
		if got, err := logsPath(arg); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", arg, got, err, want)
		}
	}
	for _, bad := range []string{"service", "web", "job/", "workflow/x", "pods/web"} {
		if _, err := logsPath(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestReadyPod: the port-forward goes to a ready pod, never to one not
// ready or going away.
func TestReadyPod(t *testing.T) {
	pod := func(name string, ready bool) corev1.Pod {
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{
			Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}},
		}}
	}
	going := pod("c", true)
	going.DeletionTimestamp = &metav1.Time{}
	if got := readyPod([]corev1.Pod{pod("a", false), going, pod("b", true)}); got == nil || got.Name != "b" {
		t.Errorf("picked %v, want b", got)
	}
	if got := readyPod([]corev1.Pod{pod("a", false), going}); got != nil {
		t.Errorf("a pod not ready or going away was picked: %s", got.Name)
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 40 * time.Second: "40s", 125 * time.Second: "2m5s", 2*time.Hour + 5*time.Minute: "2h5m",
		76 * time.Hour: "3d4h", 72*time.Hour - time.Second: "2d23h", -time.Second: "0s",
	} {
		if got := human(d); got != want {
			t.Errorf("%s: %q, want %q", d, got, want)
		}
	}
}

// TestAPIPort: the port-forward goes to the Service's http port wherever
// it stands in the list, never to the wake port; the first without one.
func TestAPIPort(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "wake", Port: 8081}, {Name: "http", Port: 8080},
	}}}
	if got := apiPort(svc); got.Name != "http" {
		t.Errorf("wake listed first: picked %s, want http", got.Name)
	}
	svc.Spec.Ports = []corev1.ServicePort{{Name: "api", Port: 9000}, {Name: "wake", Port: 8081}}
	if got := apiPort(svc); got.Name != "api" {
		t.Errorf("no http port: picked %s, want the first (api)", got.Name)
	}
}

// TestEnvLogsBounded: arbor env logs prints at most --limit-bytes of an
// answer, even from a server that sends more than it was asked for.
func TestEnvLogsBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(strings.Repeat("x", 4096)))
	}))
	defer srv.Close()
	out, errOut, code := runArbor(t, "env", "--server", srv.URL, "--token", "t", "logs", "shop", "main", "workflow", "--limit-bytes", "100")
	if code != exitOK || len(out) != 100 {
		t.Fatalf("exit %d, printed %d bytes, want 100\n%s", code, len(out), errOut)
	}
}
