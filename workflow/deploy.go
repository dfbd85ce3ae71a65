package workflow

import (
	"context"
	"errors"
	"time"

	"k8s.io/client-go/kubernetes"
)

// AnnotationDeployRequested on an environment's namespace holds the time of
// the latest deploy request. A request lives in the cluster, not in a
// replica's memory: whichever replica receives it, the leader sees it (its
// namespace watch fires), and a restart does not lose it. The leader
// compares it with the last request it handled, kept in the environment's
// record (see Requested).
const AnnotationDeployRequested = "arbor.dev/deploy-requested"

// ErrNoEnvironment is returned by RequestDeploy when the environment has no namespace of arbor's.
var ErrNoEnvironment = errors.New("no such environment")

// RequestDeploy records a deploy request on an environment's namespace and
// returns its value. It refuses a namespace arbor did not create, and,
// when install is not "", one another install created.
func RequestDeploy(ctx context.Context, kube kubernetes.Interface, namespace, install string, now time.Time) (string, error) {
	value := now.UTC().Format(time.RFC3339Nano)
	if err := Annotate(ctx, kube, namespace, install, "deploy", map[string]string{AnnotationDeployRequested: value}); err != nil {
		return "", err
	}
	return value, nil
}

// Requested returns the pending deploy request of an environment: the
// request on its namespace, when it is not the one last handled (kept by
// the caller in the environment's record). After acting on it the caller
// stores the returned value as handled.
func Requested(nsAnnotations map[string]string, handled string) (string, bool) {
	v := nsAnnotations[AnnotationDeployRequested]
	return v, v != "" && v != handled
}

// DeployResponse is the body of a successful deploy request.
type DeployResponse struct {
	App       string `json:"app"`
	Env       string `json:"env"`
	Namespace string `json:"namespace"`
	Requested string `json:"requested"`
}
