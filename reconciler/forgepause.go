package reconciler

import (
	"strings"
	"time"
)

// What the forge shows of a paused environment and of a branch waiting
// for a slot (docs/forge.md): both last, unlike a deploy, so the commit
// status and the comment say why and what ends them.

// pausedDescription is a paused environment's commit status: why, where,
// and what wakes it.
func pausedDescription(app string, st *envState) string {
	d := "paused"
	if st.Pause != nil && st.Pause.Reason != "" {
		d += " (" + st.Pause.Reason + ")"
	}
	d += " in " + st.Namespace + "; "
	if wakesOnRequest(st) {
		return d + "wakes on the next request"
	}
	return d + "resume with " + resumeCommand(app, st)
}

// wakesOnRequest reports whether a request to one of the environment's
// hosts wakes it: its Ingresses point at the waking route (Reconciler.Wake
// looks for the host among the same hosts).
func wakesOnRequest(st *envState) bool {
	return st.Pause != nil && st.Pause.Paused && len(st.Pause.Hosts) > 0
}

// wakeURL is the URL whose visit wakes a paused environment, "" when none.
func wakeURL(st *envState) string {
	if !wakesOnRequest(st) || len(st.URLs) == 0 {
		return ""
	}
	return st.URLs[0].URL
}

// resumeCommand is the command line that resumes the environment.
func resumeCommand(app string, st *envState) string {
	env := st.Branch
	if st.EnvID != "" {
		env = st.EnvID // one word, whatever the branch holds
	}
	return "arbor env resume " + app + " " + env
}

// pauseReasonText says in words what paused the environment.
func pauseReasonText(st *envState) string {
	if st.Pause == nil {
		return "paused"
	}
	switch st.Pause.Reason {
	case reasonAPI:
		return "paused through the API (arbor env pause)"
	case reasonSchedule:
		return "paused by the app's schedule, outside its running hours"
	case reasonIdle:
		return "paused after idle_after without a push, deploy or wake"
	}
	return strings.TrimSpace("paused " + st.Pause.Reason)
}

// pausedSince is when the environment was paused (zero when unknown).
func pausedSince(st *envState) time.Time {
	if st.Pause == nil {
		return time.Time{}
	}
	return st.Pause.Since
}

// waitingForSlot reports whether a Waiting branch waits for a
// max_environments slot (and not for its images).
func waitingForSlot(st *envState) bool {
	return st.Phase == PhaseWaiting && strings.HasPrefix(st.Message, slotMessagePrefix)
}
