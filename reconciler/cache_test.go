package reconciler

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/state"
)

func recordAt(t *testing.T, rv, commit string) *corev1.ConfigMap {
	t.Helper()
	full, err := json.Marshal(&envState{App: "a", Branch: "b", Namespace: "ns", Commit: commit, Phase: PhaseReady})
	if err != nil {
		t.Fatal(err)
	}
	data, err := state.Encode("ns", &state.State{App: "a", Branch: "b", Commit: commit, Daemon: full})
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: StateConfigMap, ResourceVersion: rv}, Data: data}
}

// The informer decodes a record's new version as it queues it and stores
// it after: a read in between finds the store's older, already trimmed
// copy. It gets the newer decoded record, not an error that makes the
// environment look recordless.
func TestRecordReadWhileTheStoreLags(t *testing.T) {
	c := &clusterCache{decoded: decodedStates{m: map[string]decodedState{}}}
	old := recordAt(t, "1", "c1")
	if _, err := c.slimRecord(old); err != nil {
		t.Fatal(err)
	}
	if _, err := c.slimRecord(recordAt(t, "2", "c2")); err != nil { // queued, not stored yet
		t.Fatal(err)
	}
	st, err := c.decoded.get(old)
	if err != nil {
		t.Fatalf("the stored version read while a newer one was queued: %v", err)
	}
	if st.Commit != "c2" {
		t.Errorf("read commit %s, want the newer record's c2", st.Commit)
	}
	c.decoded.forget("ns", "2")
	if _, err := c.decoded.get(old); err == nil {
		t.Error("a deleted record still read")
	}
}

// A record enters the cache as its name and version only, its install and
// env labels read into the decoded record first.
func TestSlimRecordKeepsOnlyIdentity(t *testing.T) {
	c := &clusterCache{decoded: decodedStates{m: map[string]decodedState{}}}
	cm := recordAt(t, "7", "c1")
	cm.Labels = map[string]string{apply.LabelInstall: "blue", apply.LabelEnv: "b"}
	cm.Annotations = map[string]string{"note": "x"}
	cm.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "arbor"}}
	cm.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	out, err := c.slimRecord(cm)
	if err != nil {
		t.Fatal(err)
	}
	want := corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: StateConfigMap, ResourceVersion: "7"}}
	if got := out.(*corev1.ConfigMap); !reflect.DeepEqual(*got, want) {
		t.Errorf("cached record %+v, want only its name and version", got)
	}
	st, err := c.decoded.get(out.(*corev1.ConfigMap))
	if err != nil || st.Commit != "c1" {
		t.Fatalf("decoded record %+v, %v", st, err)
	}
}
