// Package state keeps each environment's record in the cluster, in one
// ConfigMap in the environment's namespace: which app, branch and commit it
// runs, the configuration hash, the environment template, the last workflow
// and its outcome, and the inventory of every object applied (what Prune
// compares the desired set against). The cluster and git are arbor's only
// state, so a restarted daemon, a second replica or the CLI read the same record.
//
// This package is the record's one owner: the command line and the daemon
// both read and write it here. The daemon's own part (State.Daemon) is kept
// whole; a record that names an install belongs to that install's daemon.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/apply"
)

// ConfigMapName is the name of the record in every environment namespace.
const ConfigMapName = "arbor-environment"

// Labels of the record: arbor's managed-by label, LabelRecord to find every
// record in the cluster, and LabelApp when the app name is a valid label value.
const (
	LabelRecord = "arbor.dev/record"
	RecordValue = "environment"
	LabelApp    = apply.LabelApp
)

// ErrNotFound is returned by Read when the namespace holds no record.
var ErrNotFound = errors.New("no environment record")

// Outcome is how an environment's last workflow run ended. The record owns
// the values; the workflow executor reports them.
type Outcome string

// The outcomes of a run.
const (
	OutcomeRunning   Outcome = "running"
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomeWarnings: every step ran, but some task failed without
	// halt_on_error; its failure is a warning.
	OutcomeWarnings Outcome = "succeeded-with-warnings"
	OutcomeFailed   Outcome = "failed" // halted by a failure, or an object could not be applied
)

// State is an environment's record.
type State struct {
	Namespace  string // where the record lives; filled by Read and List
	App        string
	Branch     string
	Commit     string
	ConfigHash string
	Template   string // environment template: permanent, ephemeral or a custom one
	// Workflow is the last workflow run (setup, patch, teardown), Outcome how
	// it ended (OutcomeRunning while it runs) and Message why it failed.
	Workflow string
	Outcome  Outcome
	Message  string
	// UpdatedAt is when the record was last written (set by Write).
	UpdatedAt time.Time
	// Inventory is every object applied to the environment. The record itself
	// is never in it.
	Inventory apply.Inventory
	// Install is the arbor install (daemon) that manages the environment, ""
	// for one the command line applied. EnvID is the environment's id. Both
	// are labels of the record.
	Install, EnvID string
	// Daemon is the daemon's own part of the record (its phase, workflow
	// progress, fingerprints), kept as it was written: package state stores
	// it but does not read it.
	Daemon json.RawMessage
}

// ManagedBy names the install whose daemon manages the environment, or "".
// Only that daemon writes such a record: the command line refuses to apply
// or delete the environment, so no write drops the daemon's part.
func (s *State) ManagedBy() string { return s.Install }

// Keys of the record's data.
const (
	keyApp, keyBranch, keyCommit, keyConfigHash = "app", "branch", "commit", "config-hash"
	keyTemplate, keyWorkflow, keyOutcome        = "template", "workflow", "workflow-outcome"
	keyMessage, keyUpdatedAt, keyInventory      = "workflow-message", "updated-at", "inventory"
	keyDaemon                                   = "daemon-status"
)

// Ref is the record's own object reference.
func Ref(namespace string) apply.ObjectRef {
	return apply.ObjectRef{Kind: "ConfigMap", Namespace: namespace, Name: ConfigMapName}
}

// Read returns the record in namespace, or ErrNotFound.
func Read(ctx context.Context, cs kubernetes.Interface, namespace string) (*State, error) {
	cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, ConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s: %w", Ref(namespace), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read: %w", Ref(namespace), err)
	}
	return Decode(cm)
}

// List returns every record in the cluster (or in one namespace when
// namespace is not empty), in no particular order.
func List(ctx context.Context, cs kubernetes.Interface, namespace string) ([]*State, error) {
	sel := apply.LabelManagedBy + "=" + apply.ManagedByValue + "," + LabelRecord + "=" + RecordValue
	list, err := cs.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list environment records: %w", err)
	}
	out := make([]*State, 0, len(list.Items))
	var errs []error
	for i := range list.Items {
		if list.Items[i].Name != ConfigMapName {
			continue
		}
		st, err := Decode(&list.Items[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, st)
	}
	return out, errors.Join(errs...)
}

// Write stores st as the record in namespace with server-side apply, under
// arbor's field manager. The whole record is replaced.
func Write(ctx context.Context, cs kubernetes.Interface, namespace string, st *State) error {
	st.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	data, err := Encode(namespace, st)
	if err != nil {
		return fmt.Errorf("%s: %w", Ref(namespace), err)
	}
	ac := corev1ac.ConfigMap(ConfigMapName, namespace).WithLabels(labels(st)).WithData(data)
	_, err = cs.CoreV1().ConfigMaps(namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: apply.FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("%s: write: %w", Ref(namespace), err)
	}
	return nil
}

// labels are the record's: arbor's, the record marker, and whose it is.
func labels(st *State) map[string]string {
	l := map[string]string{apply.LabelManagedBy: apply.ManagedByValue, LabelRecord: RecordValue}
	for k, v := range map[string]string{LabelApp: st.App, apply.LabelEnv: st.EnvID, apply.LabelInstall: st.Install} {
		if v != "" && len(validation.IsValidLabelValue(v)) == 0 {
			l[k] = v
		}
	}
	return l
}

// Delete removes the record from namespace; a missing record is not an error.
func Delete(ctx context.Context, cs kubernetes.Interface, namespace string) error {
	err := cs.CoreV1().ConfigMaps(namespace).Delete(ctx, ConfigMapName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: delete: %w", Ref(namespace), err)
	}
	return nil
}

// Encode returns the record's data keys for st (the record's own reference
// left out of the inventory, which is sorted).
func Encode(namespace string, st *State) (map[string]string, error) {
	inv := make(apply.Inventory, 0, len(st.Inventory))
	for _, r := range st.Inventory.Sorted() {
		if r != Ref(namespace) {
			inv = append(inv, r)
		}
	}
	b, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	data := map[string]string{
		keyApp: st.App, keyBranch: st.Branch, keyCommit: st.Commit, keyConfigHash: st.ConfigHash,
		keyTemplate: st.Template, keyWorkflow: st.Workflow, keyOutcome: string(st.Outcome), keyMessage: st.Message,
		keyUpdatedAt: st.UpdatedAt.Format(time.RFC3339), keyInventory: string(b),
	}
	if len(st.Daemon) > 0 {
		data[keyDaemon] = string(st.Daemon)
	}
	return data, nil
}

// Decode reads a record ConfigMap's shared keys.
func Decode(cm *corev1.ConfigMap) (*State, error) {
	d := cm.Data
	st := &State{
		Namespace: cm.Namespace, App: d[keyApp], Branch: d[keyBranch], Commit: d[keyCommit],
		ConfigHash: d[keyConfigHash], Template: d[keyTemplate], Workflow: d[keyWorkflow],
		Outcome: Outcome(d[keyOutcome]), Message: d[keyMessage],
		Install: cm.Labels[apply.LabelInstall], EnvID: cm.Labels[apply.LabelEnv],
	}
	if v := d[keyDaemon]; v != "" {
		st.Daemon = json.RawMessage(v)
	}
	ref := Ref(cm.Namespace)
	if v := d[keyUpdatedAt]; v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, fmt.Errorf("%s: data.%s: %w", ref, keyUpdatedAt, err)
		}
		st.UpdatedAt = t
	}
	if v := d[keyInventory]; v != "" {
		if err := json.Unmarshal([]byte(v), &st.Inventory); err != nil {
			return nil, fmt.Errorf("%s: data.%s: %w", ref, keyInventory, err)
		}
	}
	return st, nil
}
