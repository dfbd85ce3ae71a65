package state

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/arbordev/arbor/apply"
	"github.com/arbordev/arbor/internal/testcluster"
)

func sample(ns string) *State {
	return &State{
		App: "shop", Branch: "feature/login", Commit: "0123456789abcdef0123456789abcdef01234567",
		ConfigHash: "c0ffee", Template: "ephemeral", Workflow: "setup", Outcome: OutcomeFailed,
		Message: "jobs.migrate: Job/x/migrate: job failed: BackoffLimitExceeded",
		Inventory: apply.Inventory{
			{Kind: "Service", Namespace: ns, Name: "web"},
			{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"},
			Ref(ns), // the record itself: never stored in its own inventory
		},
	}
}

func TestEncodeDecode(t *testing.T) {
	st := sample("env")
	st.UpdatedAt = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	data, err := Encode("env", st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "env", Name: ConfigMapName}, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	want := *st
	want.Namespace = "env"
	want.Inventory = apply.Inventory{{Kind: "Service", Namespace: "env", Name: "web"}, {Group: "apps", Kind: "Deployment", Namespace: "env", Name: "web"}}.Sorted()
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", *got, want)
	}
}

func TestDecodeBadInventory(t *testing.T) {
	_, err := Decode(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "env", Name: ConfigMapName},
		Data: map[string]string{keyInventory: "[{"}})
	if err == nil || !strings.Contains(err.Error(), "ConfigMap/env/arbor-environment: data.inventory") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadWriteOnCluster(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	ctx := context.Background()
	if _, err := Read(ctx, cs, ns); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read of an empty namespace: %v", err)
	}
	st := sample(ns)
	if err := Write(ctx, cs, ns, st); err != nil {
		t.Fatal(err)
	}
	got, err := Read(ctx, cs, ns)
	if err != nil {
		t.Fatal(err)
	}
	if got.Branch != st.Branch || got.Outcome != OutcomeFailed || len(got.Inventory) != 2 || got.Inventory.Contains(Ref(ns)) {
		t.Fatalf("Read = %+v", got)
	}
	st.Outcome, st.Message = OutcomeSucceeded, ""
	if err := Write(ctx, cs, ns, st); err != nil {
		t.Fatal(err)
	}
	all, err := List(ctx, cs, ns)
	if err != nil || len(all) != 1 || all[0].Outcome != OutcomeSucceeded || all[0].Message != "" {
		t.Fatalf("List = %+v, %v", all, err)
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Labels[apply.LabelManagedBy] != apply.ManagedByValue || cm.Labels[LabelApp] != "shop" {
		t.Fatalf("labels = %v", cm.Labels)
	}
	if err := Delete(ctx, cs, ns); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(ctx, cs, ns); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read after Delete: %v", err)
	}
}
