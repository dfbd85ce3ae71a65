package apply

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/arbordev/arbor/inventory"
)

// Owner labels: which arbor install, app and environment an object belongs
// to. Together with LabelManagedBy they say whose an object is; the engine
// writes into nothing owned by another (ApplyOptions.Owner).
const (
	LabelInstall = inventory.LabelInstall // defined once, in inventory
	LabelApp     = inventory.LabelApp
	LabelEnv     = inventory.LabelEnv
)

// ownerLabels are the labels an Owner is made of, in the order errors name them.
var ownerLabels = []string{LabelInstall, LabelApp, LabelEnv}

// Owner names the install, app and environment (env id) an environment's
// objects belong to.
type Owner map[string]string

// OwnerOf reads the owner labels of obj (usually the environment's Namespace).
func OwnerOf(obj *unstructured.Unstructured) Owner {
	if obj == nil {
		return nil
	}
	return ownerOfLabels(obj.GetLabels())
}

func ownerOfLabels(labels map[string]string) Owner {
	o := Owner{}
	for _, k := range ownerLabels {
		if v, ok := labels[k]; ok {
			o[k] = v
		}
	}
	return o
}

// String names the owner as install/app/env.
func (o Owner) String() string {
	parts := make([]string, len(ownerLabels))
	for i, k := range ownerLabels {
		parts[i] = o[k]
		if parts[i] == "" {
			parts[i] = "-"
		}
	}
	return strings.Join(parts, "/")
}

// OwnedByOtherError reports an object that exists and belongs to another
// install, app or environment than the one being applied: arbor leaves it alone.
type OwnedByOtherError struct {
	Ref   ObjectRef
	Owner Owner // the live object's; empty when arbor does not manage it
	Want  Owner
}

func (e *OwnedByOtherError) Error() string {
	if len(e.Owner) == 0 {
		return fmt.Sprintf("%s: %v", e.Ref, ErrNotManaged)
	}
	return fmt.Sprintf("%s: belongs to %s (install/app/env), not to %s", e.Ref, e.Owner, e.Want)
}

// CheckOwner refuses an object with these labels when it is not arbor's or
// belongs to another owner than want. An object without an install label but
// with the same app and environment is an environment of an older arbor
// (before install identities): it is adopted, and the apply puts the install
// label on it. The engine checks a live namespace with it; the daemon checks
// its cached copy before it writes its record, which goes around the engine.
func CheckOwner(ref ObjectRef, labels map[string]string, want Owner) error {
	if labels[LabelManagedBy] != ManagedByValue {
		return &OwnedByOtherError{Ref: ref, Want: want}
	}
	got := ownerOfLabels(labels)
	for k, w := range want {
		v, has := got[k]
		if k == LabelInstall && !has {
			continue // an older arbor's: adopted
		}
		if v != w {
			return &OwnedByOtherError{Ref: ref, Owner: got, Want: want}
		}
	}
	return nil
}

// Unwrap makes an object arbor does not manage at all match ErrNotManaged.
func (e *OwnedByOtherError) Unwrap() error {
	if len(e.Owner) == 0 {
		return ErrNotManaged
	}
	return nil
}
