package images

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"

	"github.com/arbordev/arbor/internal/redact"
)

// Bounds of what is kept of a build's output.
const (
	// DefaultLogTail is how many of the failing step's last lines an error keeps.
	DefaultLogTail = 20
	// maxStepLog bounds the output kept per step (the tail: older bytes go).
	maxStepLog = 64 << 10
	// maxSteps bounds how many steps' output is kept.
	maxSteps = 512
	// maxLineLen cuts a very long log line.
	maxLineLen = 512
)

// BuildError is a failed build: the step that failed, BuildKit's reason,
// and the last lines that step printed. Callers show it in status as it is.
type BuildError struct {
	Image  string   // the tag that was being built
	Step   string   // e.g. "[2/3] RUN make", empty when no step failed (a push, a solve setup)
	Reason string   // BuildKit's error
	Log    []string // the step's last lines, at most the builder's LogTail
}

func (e *BuildError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "build %s", e.Image)
	if e.Step != "" {
		fmt.Fprintf(&b, ": step %s", e.Step)
	}
	fmt.Fprintf(&b, ": %s", e.Reason)
	if len(e.Log) > 0 {
		fmt.Fprintf(&b, "\nlast %d lines of its log:\n  %s", len(e.Log), strings.Join(e.Log, "\n  "))
	}
	return b.String()
}

// buildLog collects a build's progress: the steps, which failed, and a
// bounded tail of each step's output.
type buildLog struct {
	names  map[digest.Digest]string
	order  []digest.Digest
	failed digest.Digest
	reason string
	out    map[digest.Digest]*stepLog
}

// stepLog is the tail of one step's output as chunks with their BuildKit
// timestamps: stdout and stderr arrive as separate streams, each flushed on
// its own, and ordering the chunks by time comes closer to the order they
// were written in than their arrival does (within a stream it is exact;
// across streams, as close as the flush times).
type stepLog struct {
	chunks []logChunk
	size   int
}

type logChunk struct {
	at   time.Time
	data []byte
}

func (s *stepLog) add(at time.Time, data []byte) {
	s.chunks = append(s.chunks, logChunk{at: at, data: bytes.Clone(data)})
	s.size += len(data)
	// Drop the oldest chunks past twice the bound, so trimming is rare.
	if s.size > 2*maxStepLog {
		sort.SliceStable(s.chunks, func(i, j int) bool { return s.chunks[i].at.Before(s.chunks[j].at) })
		for s.size > maxStepLog && len(s.chunks) > 1 {
			s.size -= len(s.chunks[0].data)
			s.chunks = s.chunks[1:]
		}
		if c := &s.chunks[0]; s.size > maxStepLog {
			cut := s.size - maxStepLog
			c.data = c.data[cut:]
			s.size -= cut
		}
	}
}

// text is the output in the order it was written.
func (s *stepLog) text() string {
	sort.SliceStable(s.chunks, func(i, j int) bool { return s.chunks[i].at.Before(s.chunks[j].at) })
	var b strings.Builder
	for _, c := range s.chunks {
		b.Write(c.data)
	}
	return b.String()
}

func newBuildLog() *buildLog {
	return &buildLog{names: map[digest.Digest]string{}, out: map[digest.Digest]*stepLog{}}
}

// consume reads statuses until ch closes.
func (l *buildLog) consume(ch <-chan *client.SolveStatus) {
	for s := range ch {
		l.add(s)
	}
}

func (l *buildLog) add(s *client.SolveStatus) {
	for _, v := range s.Vertexes {
		if _, ok := l.names[v.Digest]; !ok {
			if len(l.names) >= maxSteps {
				continue
			}
			l.order = append(l.order, v.Digest)
		}
		l.names[v.Digest] = v.Name
		if v.Error != "" && l.failed == "" && !strings.Contains(v.Error, "context canceled") {
			l.failed, l.reason = v.Digest, v.Error
		}
	}
	for _, lg := range s.Logs {
		if _, ok := l.names[lg.Vertex]; !ok {
			continue
		}
		sl := l.out[lg.Vertex]
		if sl == nil {
			sl = &stepLog{}
			l.out[lg.Vertex] = sl
		}
		sl.add(lg.Timestamp, lg.Data)
	}
}

// tail returns the last n lines of a step's output, each cut to maxLineLen
// and with secrets masked.
func (l *buildLog) tail(d digest.Digest, n int, secrets []string) []string {
	sl := l.out[d]
	if sl == nil || n <= 0 {
		return nil
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(sl.text(), "\r\n", "\n"), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := make([]string, len(lines))
	for i, ln := range lines {
		if len(ln) > maxLineLen {
			ln = ln[:maxLineLen] + "..."
		}
		out[i] = maskAll(ln, secrets)
	}
	return out
}

// summary is a finished build's log: each step's name, then its last
// perStep lines, at most max lines in all (the last ones kept).
func (l *buildLog) summary(perStep, max int, secrets []string) []string {
	var out []string
	for _, d := range l.order {
		out = append(out, maskAll(l.names[d], secrets))
		for _, ln := range l.tail(d, perStep, secrets) {
			out = append(out, "  "+ln)
		}
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

// failure turns a solve error into a BuildError naming the failing step.
func (l *buildLog) failure(image string, err error, n int, secrets []string) *BuildError {
	e := &BuildError{Image: image, Reason: maskAll(trimReason(err.Error()), secrets)}
	if l.failed != "" {
		e.Step = maskAll(l.names[l.failed], secrets)
		e.Log = l.tail(l.failed, n, secrets)
	}
	return e
}

// trimReason drops the stack of gRPC wrapping BuildKit puts around a step's
// error, keeping the part a person reads.
func trimReason(msg string) string {
	msg = strings.TrimPrefix(msg, "failed to solve: ")
	if len(msg) > 2048 {
		msg = msg[:2048] + "..."
	}
	return msg
}

func maskAll(s string, secrets []string) string {
	return redact.Values(fmt.Errorf("%s", s), secrets...).Error()
}
