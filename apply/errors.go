package apply

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrNotManaged marks an object that exists without arbor's managed-by label:
// arbor neither takes it over nor deletes it.
var ErrNotManaged = errors.New("exists and is not managed by arbor (no label " + LabelManagedBy + "=" + ManagedByValue + ")")

// FieldConflict is one field owned by another field manager.
type FieldConflict struct {
	Manager string // the other field manager, e.g. "kubectl-edit"
	Field   string // the field path, e.g. ".spec.replicas"
}

// ConflictError reports that applying an object would take fields from other
// field managers. It is returned only when Options.Force is false.
type ConflictError struct {
	Ref       ObjectRef
	Conflicts []FieldConflict
	Err       error // the API server's error
}

func (e *ConflictError) Error() string {
	parts := make([]string, 0, len(e.Conflicts))
	for _, c := range e.Conflicts {
		parts = append(parts, fmt.Sprintf("%s (owned by %q)", c.Field, c.Manager))
	}
	return fmt.Sprintf("%s: conflict with other field managers on %s; arbor takes ownership only when forced",
		e.Ref, strings.Join(parts, ", "))
}

func (e *ConflictError) Unwrap() error { return e.Err }

// asConflict turns an apply conflict from the API server into a ConflictError.
func asConflict(ref ObjectRef, err error) (*ConflictError, bool) {
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Reason != metav1.StatusReasonConflict || st.Status().Details == nil {
		return nil, false
	}
	ce := &ConflictError{Ref: ref, Err: err}
	for _, c := range st.Status().Details.Causes {
		if c.Type != metav1.CauseTypeFieldManagerConflict {
			continue
		}
		ce.Conflicts = append(ce.Conflicts, FieldConflict{Manager: quoted(c.Message), Field: c.Field})
	}
	return ce, len(ce.Conflicts) > 0
}

// quoted returns the first double-quoted word of s: the manager in the API
// server's `conflict with "kubectl-edit" using apps/v1`.
func quoted(s string) string {
	_, rest, ok := strings.Cut(s, `"`)
	if !ok {
		return s
	}
	name, _, _ := strings.Cut(rest, `"`)
	return name
}

// isImmutable reports whether err is the API server refusing to change an
// immutable field (a Job's template, a workload's selector).
func isImmutable(err error) bool {
	if !apierrors.IsInvalid(err) {
		return false
	}
	if strings.Contains(err.Error(), "field is immutable") {
		return true
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Details != nil {
		for _, c := range st.Status().Details.Causes {
			if strings.Contains(c.Message, "immutable") {
				return true
			}
		}
	}
	return false
}

// ImmutableError reports that an apply would change immutable fields.
type ImmutableError struct {
	Ref    ObjectRef
	Fields []string // the immutable fields named by the API server, e.g. "spec.template"
	Err    error    // the API server's error
}

func (e *ImmutableError) Error() string {
	return fmt.Sprintf("%s: immutable fields changed: %s", e.Ref, strings.Join(e.Fields, ", "))
}

func (e *ImmutableError) Unwrap() error { return e.Err }

// immutableFields lists the fields an Invalid error calls immutable; the API
// server's message itself repeats the whole object and is too long to show.
func immutableFields(err error) []string {
	var st apierrors.APIStatus
	var out []string
	if errors.As(err, &st) && st.Status().Details != nil {
		for _, c := range st.Status().Details.Causes {
			if strings.Contains(c.Message, "immutable") && c.Field != "" {
				out = append(out, c.Field)
			}
		}
	}
	if len(out) == 0 {
		out = []string{"(unnamed)"}
	}
	return out
}

// recreatable kinds may be deleted and created again when an immutable field
// changes: their state lives elsewhere or is rebuilt by a controller. Volumes,
// namespaces and CRDs are never recreated: that would lose data.
var recreatable = map[string]bool{
	"Job": true, "CronJob": true, "Deployment": true, "StatefulSet": true, "DaemonSet": true,
	"ReplicaSet": true, "Pod": true, "Service": true, "ConfigMap": true, "Secret": true,
	"ServiceAccount": true, "RoleBinding": true, "ClusterRoleBinding": true, "PodDisruptionBudget": true,
	"Ingress": true,
}
