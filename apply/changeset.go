package apply

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// Action is what the engine did (or, for Diff, would do) to one object.
type Action string

// The actions of a Change.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Deleted    Action = "deleted"
	Recreated  Action = "recreated" // deleted and created again: an immutable field changed
	Failed     Action = "failed"
	Skipped    Action = "skipped" // not touched: not arbor's, or not attempted after an earlier failure
)

// Change is the outcome for one object.
type Change struct {
	Ref    ObjectRef
	Action Action
	// Fields are the changed field paths (".spec.replicas", ".data.password"),
	// sorted; empty for created and deleted objects.
	Fields []string
	// Diff is a unified diff of the object's YAML, live before desired, with
	// Secret values masked. Empty when nothing changes.
	Diff string
	// Reason says why an object was skipped or recreated, or the error text of a failure.
	Reason string
	// UID and Generation are the object's as the server answered the write
	// (or, unchanged, as it was read); empty when Apply neither wrote nor
	// read it. A caller that waits for the object from a cache of its own
	// knows by them which version of it the cache must show.
	UID        types.UID
	Generation int64
}

// of returns c with the UID and generation of obj (the server's answer).
func (c Change) of(obj *unstructured.Unstructured) Change {
	if obj != nil {
		c.UID, c.Generation = obj.GetUID(), obj.GetGeneration()
	}
	return c
}

// ChangeSet is the outcome of one verb, one Change per object in the order given.
type ChangeSet struct {
	Changes []Change
}

// Changed reports whether anything was (or would be) written or deleted.
func (cs *ChangeSet) Changed() bool {
	if cs == nil {
		return false
	}
	for _, c := range cs.Changes {
		switch c.Action {
		case Created, Configured, Deleted, Recreated:
			return true
		}
	}
	return false
}

// Count returns how many changes have the action a.
func (cs *ChangeSet) Count(a Action) int {
	n := 0
	if cs != nil {
		for _, c := range cs.Changes {
			if c.Action == a {
				n++
			}
		}
	}
	return n
}

// Written is every object the change set wrote (created, configured or
// recreated); nil for a nil change set.
func (cs *ChangeSet) Written() Inventory {
	if cs == nil {
		return nil
	}
	var out Inventory
	for _, c := range cs.Changes {
		switch c.Action {
		case Created, Configured, Recreated:
			out = append(out, c.Ref)
		}
	}
	return out
}

// Summary is one line per object: "Kind/ns/name action (fields)".
func (cs *ChangeSet) Summary() string {
	if cs == nil {
		return ""
	}
	var b strings.Builder
	for _, c := range cs.Changes {
		if c.Action == "" {
			continue
		}
		fmt.Fprintf(&b, "%s %s", c.Ref, c.Action)
		if len(c.Fields) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(c.Fields, ", "))
		}
		if c.Reason != "" {
			fmt.Fprintf(&b, ": %s", c.Reason)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// UnifiedDiff joins the diffs of every changed object.
func (cs *ChangeSet) UnifiedDiff() string {
	if cs == nil {
		return ""
	}
	var b strings.Builder
	for _, c := range cs.Changes {
		b.WriteString(c.Diff)
	}
	return b.String()
}
