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

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/reconciler/workflow"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/state"
)

// StateConfigMap is the name of the ConfigMap holding an environment's record
// in its namespace.
const StateConfigMap = state.ConfigMapName

// fieldManager is arbor's one server-side apply field manager.
const fieldManager = apply.FieldManager

// Phases of an environment.
const (
	PhasePending   = "Pending"   // desired, not applied yet
	PhaseDeploying = "Deploying" // being applied or waited for
	PhaseReady     = "Ready"     // the branch's newest valid commit is applied and ready
	PhaseFailed    = "Failed"    // the last apply or wait failed; retried with backoff
	PhaseInvalid   = "Invalid"   // the newest commit's configuration is invalid; the last good one keeps running
	PhaseDeleting  = "Deleting"  // the branch is gone; the environment is being removed
	PhaseExpired   = "Expired"   // no commit for expires_after: torn down until the next push
)

// envState is an environment's record, kept in its namespace so that a
// restarted daemon, or a standby replica, knows it.
type envState struct {
	App          string             `json:"app"`
	Install      string             `json:"install,omitempty"`
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
	// Written are the objects the last deploy wrote, at AppliedAt: adoption
	// waits until the cache shows each of them written by arbor since then.
	Written   []render.ObjectRef `json:"written,omitempty"`
	AppliedAt time.Time          `json:"appliedAt,omitempty"`

	Phase          string          `json:"phase"`
	LastError      string          `json:"lastError,omitempty"`
	Findings       schema.Findings `json:"findings,omitempty"`
	InvalidCommit  string          `json:"invalidCommit,omitempty"`
	LastTransition time.Time       `json:"lastTransition"`
	URLs           []render.URL    `json:"urls,omitempty"`
	Links          []schema.Link   `json:"links,omitempty"`
	ExpiresAfter   string          `json:"expiresAfter,omitempty"`
	// ExpiresAt is when the environment expires (zero: never or kept).
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// Workflow is the last (or running) workflow's progress.
	Workflow *workflow.Progress `json:"workflow,omitempty"`
	// LastRun is what the last finished workflow ran (commit, configuration,
	// imports) and whether the last setup succeeded: what the stage choice
	// compares a new render with. Nil on records of older daemons.
	LastRun *workflow.Last `json:"lastRun,omitempty"`
	// HeldCommit is a commit waiting for a deploy request (auto_deploy: false).
	HeldCommit string `json:"heldCommit,omitempty"`
	// HandledRequest is the last deploy request acted on.
	HandledRequest string `json:"handledRequest,omitempty"`
}

// The record shares its ConfigMap and keys with package state (which the
// CLI reads and writes); the daemon adds its full record under daemonKey.
const daemonKey = "daemon-status"

func decodeState(cm *corev1.ConfigMap) (*envState, error) {
	d := cm.Data
	var st envState
	if v, ok := d[daemonKey]; ok {
		if err := json.Unmarshal([]byte(v), &st); err != nil {
			return nil, fmt.Errorf("ConfigMap/%s/%s: data.%s: %w", cm.Namespace, cm.Name, daemonKey, err)
		}
		return &st, nil
	}
	// written by the CLI: only the shared keys
	shared, err := state.Decode(cm)
	if err != nil {
		return nil, err
	}
	return &envState{App: shared.App, Branch: shared.Branch, Commit: shared.Commit, ConfigHash: shared.ConfigHash,
		Template: shared.Template, Namespace: cm.Namespace, EnvID: cm.Labels[render.LabelEnv], Inventory: shared.Inventory}, nil
}

// saveState writes the record with server-side apply.
func saveState(ctx context.Context, cs kubernetes.Interface, st *envState) error {
	full, err := json.Marshal(st)
	if err != nil {
		return err
	}
	shared := &state.State{App: st.App, Branch: st.Branch, Commit: st.Commit, ConfigHash: st.ConfigHash,
		Template: st.Template, UpdatedAt: time.Now().UTC(), Inventory: st.Inventory}
	if st.Workflow != nil {
		shared.Workflow, shared.Outcome = st.Workflow.Stage, st.Workflow.Outcome
	}
	data, err := state.Encode(st.Namespace, shared)
	if err != nil {
		return err
	}
	data[daemonKey] = string(full)
	cm := corev1ac.ConfigMap(StateConfigMap, st.Namespace).
		WithLabels(map[string]string{
			render.LabelManagedBy: render.ManagedByValue,
			state.LabelRecord:     state.RecordValue,
			render.LabelApp:       st.App,
			render.LabelEnv:       st.EnvID,
			apply.LabelInstall:    st.Install,
		}).
		WithData(data)
	_, err = cs.CoreV1().ConfigMaps(st.Namespace).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("ConfigMap/%s/%s: save state: %w", st.Namespace, StateConfigMap, err)
	}
	return nil
}
