package apply

import (
	"fmt"
	"strings"
)

// maxDiffCells bounds the longest-common-subsequence table; beyond it the
// differing middle of two texts is shown as one replaced block.
const maxDiffCells = 4 << 20

type opKind byte

const (
	opEqual opKind = ' '
	opDel   opKind = '-'
	opAdd   opKind = '+'
)

type diffOp struct {
	kind opKind
	line string
}

// unifiedDiff returns a unified diff of a and b with ctx lines of context, or
// "" when they are equal.
func unifiedDiff(fromName, toName, a, b string, ctx int) string {
	if a == b {
		return ""
	}
	ops := lineOps(splitLines(a), splitLines(b))
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", fromName, toName)
	for _, h := range hunks(ops, ctx) {
		writeHunk(&out, ops, h)
	}
	return out.String()
}

// lineOps computes an edit script from a to b: the common prefix and suffix
// are kept, and the middle is aligned by a longest common subsequence.
func lineOps(a, b []string) []diffOp {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ops := make([]diffOp, 0, len(a)+len(b))
	for _, l := range a[:pre] {
		ops = append(ops, diffOp{opEqual, l})
	}
	ops = append(ops, middleOps(a[pre:len(a)-suf], b[pre:len(b)-suf])...)
	for _, l := range a[len(a)-suf:] {
		ops = append(ops, diffOp{opEqual, l})
	}
	return ops
}

func middleOps(a, b []string) []diffOp {
	var ops []diffOp
	if len(a)*len(b) > maxDiffCells || len(a) == 0 || len(b) == 0 {
		for _, l := range a {
			ops = append(ops, diffOp{opDel, l})
		}
		for _, l := range b {
			ops = append(ops, diffOp{opAdd, l})
		}
		return ops
	}
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	w := len(b) + 1
	lcs := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			ops = append(ops, diffOp{opEqual, a[i]})
			i, j = i+1, j+1
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			ops = append(ops, diffOp{opDel, a[i]})
			i++
		default:
			ops = append(ops, diffOp{opAdd, b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		ops = append(ops, diffOp{opDel, a[i]})
	}
	for ; j < len(b); j++ {
		ops = append(ops, diffOp{opAdd, b[j]})
	}
	return ops
}

// hunk is a range [start, end) of ops.
type hunk struct{ start, end int }

// hunks groups changed ops with ctx lines of context, merging hunks that touch.
func hunks(ops []diffOp, ctx int) []hunk {
	var hs []hunk
	for i, op := range ops {
		if op.kind == opEqual {
			continue
		}
		start, end := max(0, i-ctx), min(len(ops), i+ctx+1)
		if n := len(hs); n > 0 && start <= hs[n-1].end {
			hs[n-1].end = max(hs[n-1].end, end)
			continue
		}
		hs = append(hs, hunk{start, end})
	}
	return hs
}

func writeHunk(out *strings.Builder, ops []diffOp, h hunk) {
	aStart, bStart := 1, 1
	for _, op := range ops[:h.start] {
		if op.kind != opAdd {
			aStart++
		}
		if op.kind != opDel {
			bStart++
		}
	}
	aLen, bLen := 0, 0
	for _, op := range ops[h.start:h.end] {
		if op.kind != opAdd {
			aLen++
		}
		if op.kind != opDel {
			bLen++
		}
	}
	if aLen == 0 {
		aStart--
	}
	if bLen == 0 {
		bStart--
	}
	fmt.Fprintf(out, "@@ -%d,%d +%d,%d @@\n", aStart, aLen, bStart, bLen)
	for _, op := range ops[h.start:h.end] {
		out.WriteByte(byte(op.kind))
		out.WriteString(op.line)
		out.WriteByte('\n')
	}
}
