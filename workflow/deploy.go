package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/render"
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
// returns its value. It refuses a namespace arbor did not create.
func RequestDeploy(ctx context.Context, kube kubernetes.Interface, namespace string, now time.Time) (string, error) {
	ns, err := kube.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("Namespace/%s: %w", namespace, ErrNoEnvironment)
	}
	if err != nil {
		return "", fmt.Errorf("Namespace/%s: read: %w", namespace, err)
	}
	if ns.Labels[render.LabelManagedBy] != render.ManagedByValue {
		return "", fmt.Errorf("Namespace/%s: not managed by arbor: %w", namespace, ErrNoEnvironment)
	}
	value := now.UTC().Format(time.RFC3339Nano)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": ns.ResourceVersion, // the namespace checked above, and no other
		"annotations":     map[string]string{AnnotationDeployRequested: value},
	}})
	if err != nil {
		return "", err
	}
	if _, err := kube.CoreV1().Namespaces().Patch(ctx, namespace, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "arbor-deploy"}); err != nil {
		return "", fmt.Errorf("Namespace/%s: record the deploy request: %w", namespace, err)
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
