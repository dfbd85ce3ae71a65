package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/render"
	"github.com/arbordev/arbor/schema"
	"github.com/arbordev/arbor/state"
	"github.com/arbordev/arbor/workflow"
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

	Phase string `json:"phase"`
	// TargetCommit is the commit an environment waits for images of, or
	// whose images failed, while Commit still runs.
	TargetCommit string `json:"targetCommit,omitempty"`
	// Message says what the environment waits for (PhaseWaiting).
	Message        string          `json:"message,omitempty"`
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
	// Warnings are the render's warnings for the commit deployed, such as a
	// chart rendered from the cache while its repository is down.
	Warnings []string `json:"warnings,omitempty"`
	// Images are the built services' images of the last image job: pinned,
	// or why not (the failing build step and its log).
	Images []ImageStatus `json:"images,omitempty"`
	// PullRequest is the number of the branch's open pull request when the
	// record was written (with a forge): where to say, after a restart too,
	// that the environment is gone.
	PullRequest int64 `json:"pullRequest,omitempty"`
	// Pause is the environment's pausing: paused or not, why, since when,
	// its last activity, the hosts routed to the waking endpoint
	// (pause.go). Nil when pausing never applied to it.
	Pause *pauseState `json:"pause,omitempty"`
}

func decodeState(cm *corev1.ConfigMap) (*envState, error) {
	shared, err := state.Decode(cm)
	if err != nil {
		return nil, err
	}
	if len(shared.Daemon) > 0 {
		var st envState
		if err := json.Unmarshal(shared.Daemon, &st); err != nil {
			return nil, fmt.Errorf("%s: the daemon's record: %w", state.Ref(cm.Namespace), err)
		}
		return &st, nil
	}
	// written by the CLI: only the shared keys
	return &envState{App: shared.App, Branch: shared.Branch, Commit: shared.Commit, ConfigHash: shared.ConfigHash,
		Template: shared.Template, Namespace: cm.Namespace, EnvID: shared.EnvID, Inventory: shared.Inventory}, nil
}

// saveState writes the record (package state owns it), the daemon's full
// record as its own part.
func saveState(ctx context.Context, cs kubernetes.Interface, st *envState) error {
	full, err := json.Marshal(st)
	if err != nil {
		return err
	}
	rec := &state.State{App: st.App, Branch: st.Branch, Commit: st.Commit, ConfigHash: st.ConfigHash,
		Template: st.Template, Inventory: st.Inventory, Install: st.Install, EnvID: st.EnvID, Daemon: full}
	if st.Workflow != nil {
		rec.Workflow, rec.Outcome = st.Workflow.Stage, st.Workflow.Outcome
	}
	return state.Write(ctx, cs, st.Namespace, rec)
}
