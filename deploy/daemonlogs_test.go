package deploy

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/arbordev/arbor/internal/testcluster"
)

// checkLogsAsServiceAccount asks the daemon, which runs as arbor's
// ServiceAccount with exactly deploy/'s permissions, for the logs of the web
// service of the environment in ns (kwok serves them), with a token allowed
// arbor's logs verb: the daemon lists the pods and reads their logs through
// the binding it makes in the environment.
func checkLogsAsServiceAccount(t *testing.T, ctx context.Context, admin *client, d *daemon, base, app, branch, ns string) {
	t.Helper()
	pods, err := admin.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "arbor.dev/service=web"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("the web pods of %s: %v", ns, err)
	}
	for _, p := range pods.Items {
		testcluster.PodLogs(t, ns, p.Name, []string{p.Spec.Containers[0].Name}, "served as arbor's ServiceAccount")
	}
	sa := testcluster.Name("log-reader")
	token := testcluster.ServiceAccountToken(t, admin.cs, namespace, sa, "logs")
	t.Cleanup(func() {
		bg := context.Background()
		_ = admin.cs.RbacV1().RoleBindings(namespace).Delete(bg, sa, metav1.DeleteOptions{})
		_ = admin.cs.RbacV1().Roles(namespace).Delete(bg, sa, metav1.DeleteOptions{})
		_ = admin.cs.CoreV1().ServiceAccounts(namespace).Delete(bg, sa, metav1.DeleteOptions{})
	})
	url := base + "/api/v1/apps/" + app + "/environments/" + branch + "/logs/services/web?tail=1"
	var last string
	err = wait.PollUntilContextTimeout(ctx, 300*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		last = res.Status + " " + string(body)
		return res.StatusCode == http.StatusOK && len(body) > 0 && string(body[:len(body)-1]) == "served as arbor's ServiceAccount", nil
	})
	if err != nil {
		t.Fatalf("logs of %s's web service through the daemon: %v; last answer: %s\ndaemon log:\n%s", ns, err, last, d.logs())
	}
}
