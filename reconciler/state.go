package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
)

// StateConfigMap is the name of the ConfigMap holding an environment's record
// in its namespace.
const StateConfigMap = "arbor-environment"

const stateKey = "state.json"

// fieldManager is arbor's one server-side apply field manager.
const fieldManager = "arbor"

// Phases of an environment.
const (
	PhasePending   = "Pending"   // desired, not applied yet
	PhaseDeploying = "Deploying" // being applied or waited for
	PhaseReady     = "Ready"     // the branch's newest valid commit is applied and ready
	PhaseFailed    = "Failed"    // the last apply or wait failed; retried with backoff
	PhaseInvalid   = "Invalid"   // the newest commit's configuration is invalid; the last good one keeps running
	PhaseDeleting  = "Deleting"  // the branch is gone; the environment is being removed
)

// envState is an environment's record, kept in its namespace so that a
// restarted daemon, or a standby replica, knows it.
type envState struct {
	App          string             `json:"app"`
	Branch       string             `json:"branch"`
	EnvID        string             `json:"envID"`
	Namespace    string             `json:"namespace"`
	Commit       string             `json:"commit"` // last applied commit
	ConfigHash   string             `json:"configHash,omitempty"`
	SettingsHash string             `json:"settingsHash,omitempty"` // daemon-side inputs of the render
	Template     string             `json:"template,omitempty"`
	Inventory    []render.ObjectRef `json:"inventory,omitempty"`
	// Fingerprints are each inventory object's generation (or resourceVersion
	// for kinds without one) as arbor last saw it settle; "" until adopted.
	Fingerprints map[string]string `json:"fingerprints,omitempty"`

	Phase          string          `json:"phase"`
	LastError      string          `json:"lastError,omitempty"`
	Findings       schema.Findings `json:"findings,omitempty"`
	InvalidCommit  string          `json:"invalidCommit,omitempty"`
	LastTransition time.Time       `json:"lastTransition"`
	URLs           []render.URL    `json:"urls,omitempty"`
	Links          []schema.Link   `json:"links,omitempty"`
	ExpiresAfter   string          `json:"expiresAfter,omitempty"`
	Workflow       *WorkflowStatus `json:"workflow,omitempty"`
}

// WorkflowStatus is a workflow's progress; the workflow runner fills it.
type WorkflowStatus struct {
	Stage string       `json:"stage"`
	Step  string       `json:"step,omitempty"`
	Tasks []TaskStatus `json:"tasks,omitempty"`
}

// TaskStatus is one workflow task's state.
type TaskStatus struct {
	Name   string `json:"name"`
	State  string `json:"state"` // pending, running, succeeded, failed
	Reason string `json:"reason,omitempty"`
}

func decodeState(cm *corev1.ConfigMap) (*envState, error) {
	var st envState
	if err := json.Unmarshal([]byte(cm.Data[stateKey]), &st); err != nil {
		return nil, fmt.Errorf("ConfigMap/%s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return &st, nil
}

// saveState writes the record with server-side apply.
func saveState(ctx context.Context, cs kubernetes.Interface, st *envState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	cm := corev1ac.ConfigMap(StateConfigMap, st.Namespace).
		WithLabels(map[string]string{
			render.LabelManagedBy: render.ManagedByValue,
			render.LabelApp:       st.App,
			render.LabelEnv:       st.EnvID,
		}).
		WithData(map[string]string{stateKey: string(data)})
	_, err = cs.CoreV1().ConfigMaps(st.Namespace).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("ConfigMap/%s/%s: save state: %w", st.Namespace, StateConfigMap, err)
	}
	return nil
}
