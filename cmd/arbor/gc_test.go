package main

import (
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"testing"
)

// The daemon collects at GOGC=50 unless the operator set GOGC.
func TestTuneGC(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	if v, set := os.LookupEnv("GOGC"); set {
		defer os.Setenv("GOGC", v)
	}

	os.Unsetenv("GOGC")
	tuneGC(log)
	if got := debug.SetGCPercent(100); got != daemonGCPercent {
		t.Errorf("GOGC unset: collector target %d, want %d", got, daemonGCPercent)
	}

	t.Setenv("GOGC", "100")
	tuneGC(log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=100 set by the operator: collector target changed to %d", got)
	}
}
