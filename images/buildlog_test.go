package images

import (
	"errors"
	"strings"
	"testing"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

func TestBuildLogTailIsBoundedAndMasked(t *testing.T) {
	l := newBuildLog()
	ok, bad := digest.FromString("ok"), digest.FromString("bad")
	l.add(&client.SolveStatus{Vertexes: []*client.Vertex{{Digest: ok, Name: "[1/2] RUN true"}, {Digest: bad, Name: "[2/2] RUN make"}}})
	var out strings.Builder
	for i := range 5000 {
		out.WriteString(strings.Repeat("x", i%700) + "\n")
	}
	out.WriteString("token=hunter2-registry-password\nthe end\n")
	l.add(&client.SolveStatus{Logs: []*client.VertexLog{{Vertex: bad, Data: []byte(out.String())}, {Vertex: ok, Data: []byte("fine\n")}}})
	l.add(&client.SolveStatus{Vertexes: []*client.Vertex{{Digest: bad, Name: "[2/2] RUN make", Error: "exit code: 2"}}})

	if n := l.out[bad].size; n > 2*maxStepLog {
		t.Fatalf("kept %d bytes of one step, more than %d", n, 2*maxStepLog)
	}
	e := l.failure("img:tag", errors.New("failed to solve: exit code: 2"), 5, []string{"hunter2-registry-password"})
	if e.Step != "[2/2] RUN make" || e.Reason != "exit code: 2" || len(e.Log) != 5 || e.Log[4] != "the end" {
		t.Fatalf("failure %+v", e)
	}
	for _, ln := range e.Log {
		if len(ln) > maxLineLen+3 || strings.Contains(ln, "hunter2") {
			t.Fatalf("line %q: too long or holds the secret", ln)
		}
	}
	if !strings.Contains(e.Error(), "token=xxxxx") {
		t.Fatalf("error %q: want the secret masked", e.Error())
	}
}
