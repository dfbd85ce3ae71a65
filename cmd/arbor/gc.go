package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// daemonGCPercent is the collector's target for the daemon unless GOGC is
// set: a collection when the heap has grown by half over what was live
// after the last, not by all of it (Go's default of 100). The daemon's
// live heap is mostly its caches, which grow with the environments, and
// the heap may reach live × (1 + GOGC/100) before a collection, so this
// headroom is most of what each environment costs in resident memory.
// Collecting more often costs CPU the daemon has to spare: about a fifth
// of one core at its busiest (a thousand environments from zero,
// docs/performance.md).
const daemonGCPercent = 50

// tuneGC sets daemonGCPercent, leaving an operator's GOGC alone. GOMEMLIMIT
// (deploy/ sets it from the container's limit) still applies on top.
func tuneGC(log *slog.Logger) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(daemonGCPercent)
	log.Debug("garbage collector target set", "gogc", daemonGCPercent)
}
