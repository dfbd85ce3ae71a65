package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/render"
)

// Requests from the API live on the environment's namespace, like a deploy
// request: whichever replica receives one, the leader sees it, and a
// restart does not lose it.
const (
	// AnnotationExpiresAt holds a later expiry asked for (RFC 3339). The
	// environment expires at the later of it and the last commit's time
	// plus expires_after.
	AnnotationExpiresAt = "arbor.dev/expires-at"
	// AnnotationDeleteRequested holds the time of a delete request: the
	// leader tears the environment down and deletes it, and the branch gets
	// no environment until its next push.
	AnnotationDeleteRequested = "arbor.dev/delete-requested"
	// AnnotationDeleteRequestedBy names who asked (the token's user).
	AnnotationDeleteRequestedBy = "arbor.dev/delete-requested-by"
)

// Annotate sets annotations on an environment's namespace, refusing a
// namespace arbor did not create or that is being deleted, and, when install
// is not "", one another install created; the patch applies to the
// namespace checked and no other (its resourceVersion). why names the
// request in errors and in the field manager (arbor-WHY).
func Annotate(ctx context.Context, kube kubernetes.Interface, namespace, install, why string, values map[string]string) error {
	ns, err := kube.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("Namespace/%s: %w", namespace, ErrNoEnvironment)
	}
	if err != nil {
		return fmt.Errorf("Namespace/%s: read: %w", namespace, err)
	}
	if ns.Labels[render.LabelManagedBy] != render.ManagedByValue {
		return fmt.Errorf("Namespace/%s: not managed by arbor: %w", namespace, ErrNoEnvironment)
	}
	if install != "" && ns.Labels[render.LabelInstall] != install {
		return fmt.Errorf("Namespace/%s: not an environment of this arbor install: %w", namespace, ErrNoEnvironment)
	}
	if ns.DeletionTimestamp != nil {
		return fmt.Errorf("Namespace/%s: being deleted: %w", namespace, ErrNoEnvironment)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": ns.ResourceVersion,
		"annotations":     values,
	}})
	if err != nil {
		return err
	}
	if _, err := kube.CoreV1().Namespaces().Patch(ctx, namespace, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "arbor-" + why}); err != nil {
		return fmt.Errorf("Namespace/%s: record the %s request: %w", namespace, why, err)
	}
	return nil
}

// RequestExtend records on an environment's namespace that it expires at
// at, not earlier. install is as for Annotate.
func RequestExtend(ctx context.Context, kube kubernetes.Interface, namespace, install string, at time.Time) error {
	return Annotate(ctx, kube, namespace, install, "extend", map[string]string{AnnotationExpiresAt: at.UTC().Format(time.RFC3339)})
}

// RequestDelete records a delete request on an environment's namespace and
// returns its value; by names who asked ("" unknown). install is as for
// Annotate.
func RequestDelete(ctx context.Context, kube kubernetes.Interface, namespace, install, by string, now time.Time) (string, error) {
	value := now.UTC().Format(time.RFC3339Nano)
	vals := map[string]string{AnnotationDeleteRequested: value}
	if by != "" {
		vals[AnnotationDeleteRequestedBy] = by
	}
	if err := Annotate(ctx, kube, namespace, install, "delete", vals); err != nil {
		return "", err
	}
	return value, nil
}

// ExtendedUntil returns the expiry an extension asked for, or zero.
func ExtendedUntil(nsAnnotations map[string]string) time.Time {
	t, err := time.Parse(time.RFC3339, nsAnnotations[AnnotationExpiresAt])
	if err != nil {
		return time.Time{}
	}
	return t
}
