package render

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/Masterminds/sprig/v3"
)

// A Go template cannot be stopped from outside: the Helm engine runs it to
// the end in whatever goroutine calls it, writing into a buffer arbor does
// not see. So that a chart whose templates loop (a range nested over large
// lists, an include that fans out, a range over a huge number) cannot hold a
// CPU or fill the memory, each template is rewritten before Helm parses it:
//
//   - a call to guardTickFunc starts every range body and every template
//     and define: it costs a counter increment and fails once the render's
//     deadline has passed or the ticks exceed maxTicks;
//
//   - each literal text is preceded by guardOutFunc with its length, and
//     each printing action ends with "| guardCountFunc", which passes the
//     value through and counts its printed size: together they fail once
//     the output passes the chart's limit, before it is written.
//
//   - the text given to tpl is passed through guardTextFunc, which rewrites
//     it the same way before tpl parses it.
//
// A failing function ends the execution (text/template stops on a
// function's error). The functions that allocate by a count (until,
// untilStep, repeat, rand*) are replaced with versions that refuse large
// counts.
const (
	guardTickFunc  = "arborGuardTick"
	guardOutFunc   = "arborGuardOut"
	guardCountFunc = "arborGuardCount"
	guardTextFunc  = "arborGuardText"
	// maxTicks bounds the loop iterations and template calls of one chart.
	maxTicks = 2_000_000
	// maxListLen bounds the lists until and untilStep make and the counts of
	// repeat and the rand functions.
	maxListLen = 100_000
)

// chartGuard stops one chart's template execution.
type chartGuard struct {
	deadline time.Time
	ticks    atomic.Int64
	stopped  atomic.Bool
	limit    time.Duration
	out      atomic.Int64 // bytes of output so far
	maxOut   int64
	random   io.Reader // the random functions' source (chartrand.go)
}

// wrote counts n bytes of output.
func (g *chartGuard) wrote(n int) error {
	if g.out.Add(int64(n)) > g.maxOut {
		g.stopped.Store(true)
		return fmt.Errorf("%w: the rendered manifests pass %d bytes (charts.max_output_size)", errGuardStopped, g.maxOut)
	}
	return nil
}

// count passes a printed value through, counting its size as
// text/template prints it.
func (g *chartGuard) count(v any) (any, error) {
	n := 0
	switch x := v.(type) {
	case nil:
	case string:
		n = len(x)
	default:
		n = len(fmt.Sprint(x))
	}
	return v, g.wrote(n)
}

var errGuardStopped = errors.New("template execution stopped")

func (g *chartGuard) tick() (string, error) {
	n := g.ticks.Add(1)
	if g.stopped.Load() {
		return "", fmt.Errorf("%w: the chart did not render within %s (charts.timeout)", errGuardStopped, g.limit)
	}
	if n > maxTicks {
		return "", fmt.Errorf("%w: more than %d loop iterations and template calls", errGuardStopped, maxTicks)
	}
	// Reading the clock on every tick would cost more than the tick.
	if n%1024 == 0 && time.Now().After(g.deadline) {
		g.stopped.Store(true)
		return "", fmt.Errorf("%w: the chart did not render within %s (charts.timeout)", errGuardStopped, g.limit)
	}
	return "", nil
}

// funcs are the functions arbor adds to (or replaces in) Helm's.
func (g *chartGuard) funcs() template.FuncMap {
	sp := sprig.TxtFuncMap()
	count := func(name string, n int) error {
		if n > maxListLen {
			return fmt.Errorf("%s: %d is over arbor's limit of %d", name, n, maxListLen)
		}
		return nil
	}
	until := sp["until"].(func(int) []int)
	untilStep := sp["untilStep"].(func(int, int, int) []int)
	repeat := sp["repeat"].(func(int, string) string)
	fm := template.FuncMap{
		guardTickFunc:  g.tick,
		guardOutFunc:   func(n int) (string, error) { return "", g.wrote(n) },
		guardCountFunc: g.count,
		guardTextFunc:  guardText,
		"until": func(n int) ([]int, error) {
			if err := count("until", n); err != nil {
				return nil, err
			}
			return until(n), nil
		},
		"untilStep": func(start, stop, step int) ([]int, error) {
			if step != 0 {
				if n := (stop - start) / step; n > maxListLen {
					return nil, count("untilStep", n)
				}
			}
			return untilStep(start, stop, step), nil
		},
		"repeat": func(n int, s string) (string, error) {
			if err := count("repeat", n*max(len(s), 1)); err != nil {
				return "", err
			}
			return repeat(n, s), nil
		},
		// Charts run with no cluster: lookup finds nothing, as in helm template.
		"lookup": func(string, string, string, string) (map[string]any, error) { return map[string]any{}, nil },
	}
	random := g.random
	if random == nil {
		random = rand.Reader
	}
	for name, f := range randFuncs(random, count) {
		fm[name] = f
	}
	return fm
}

// parseAction parses one action with the guard's functions, for inserting
// into parse trees.
func parseAction(text string) *parse.ActionNode {
	t := parse.New("guard")
	t.Mode = parse.SkipFuncCheck
	tr, err := t.Parse(text, "", "", map[string]*parse.Tree{})
	if err != nil {
		panic(err)
	}
	return tr.Root.Nodes[0].(*parse.ActionNode)
}

var (
	// tickNode is {{arborGuardTick}}.
	tickNode = parseAction("{{" + guardTickFunc + "}}")
	// countCmd is the "| arborGuardCount" appended to printing pipelines.
	countCmd = parseAction("{{ 1 | " + guardCountFunc + " }}").Pipe.Cmds[1]
	// braceNode is {{"{"}}.
	braceNode = parseAction(`{{"{"}}`)
	// textArg is "(arborGuardText X)", copied for tpl's first argument.
	textArg = parseAction("{{ tpl (" + guardTextFunc + " 1) 1 }}").Pipe.Cmds[0].Args[1].(*parse.PipeNode)
)

// pipe rewrites the tpl calls of p and of the pipelines inside it: the text
// tpl is given is passed through guardTextFunc first, which rewrites it like
// a template file, so the template text a chart builds while it runs is
// guarded too.
func (w *rewriter) pipe(p *parse.PipeNode) {
	if p == nil {
		return
	}
	for _, c := range p.Cmds {
		for _, a := range c.Args {
			switch x := a.(type) {
			case *parse.PipeNode:
				w.pipe(x)
			case *parse.ChainNode:
				if inner, ok := x.Node.(*parse.PipeNode); ok {
					w.pipe(inner)
				}
			}
		}
		// The text is tpl's first argument, whether the values come
		// second (tpl TEXT VALUES) or piped in (VALUES | tpl TEXT).
		if id, ok := c.Args[0].(*parse.IdentifierNode); ok && id.Ident == "tpl" && len(c.Args) >= 2 {
			arg := textArg.Copy().(*parse.PipeNode)
			arg.Cmds[0].Args[1] = c.Args[1]
			c.Args[1] = arg
		}
	}
}

// rewriter rewrites one template file's trees.
type rewriter struct {
	out map[int]*parse.ActionNode // {{arborGuardOut N}} by N
}

// outNode is {{arborGuardOut n}}, which counts n bytes of literal text.
func (w *rewriter) outNode(n int) *parse.ActionNode {
	if a, ok := w.out[n]; ok {
		return a
	}
	a := parseAction(fmt.Sprintf("{{%s %d}}", guardOutFunc, n))
	w.out[n] = a
	return a
}

// list rewrites l: a tick first when tick is set (a template or define
// body, a range body), each text preceded by its byte count, each printing
// action's value counted, and the lists under it likewise.
func (w *rewriter) list(l *parse.ListNode, tick bool) {
	if l == nil {
		return
	}
	nodes := make([]parse.Node, 0, 2*len(l.Nodes)+1)
	if tick {
		nodes = append(nodes, tickNode)
	}
	for _, n := range l.Nodes {
		switch x := n.(type) {
		case *parse.TextNode:
			nodes = append(nodes, w.outNode(len(x.Text)))
			// A text ending in "{" written before an action would make "{{{":
			// its last brace is printed by an action instead.
			if t := x.Text; len(t) > 0 && t[len(t)-1] == '{' {
				x.Text = t[:len(t)-1]
				nodes = append(nodes, n, braceNode)
				continue
			}
		case *parse.ActionNode:
			w.pipe(x.Pipe)
			if len(x.Pipe.Decl) == 0 {
				x.Pipe.Cmds = append(x.Pipe.Cmds, countCmd)
			}
		case *parse.TemplateNode:
			w.pipe(x.Pipe)
		case *parse.RangeNode:
			w.pipe(x.Pipe)
			w.list(x.List, true)
			w.list(x.ElseList, false)
		case *parse.IfNode:
			w.pipe(x.Pipe)
			w.list(x.List, false)
			w.list(x.ElseList, false)
		case *parse.WithNode:
			w.pipe(x.Pipe)
			w.list(x.List, false)
			w.list(x.ElseList, false)
		case *parse.ListNode:
			w.list(x, false)
		}
		nodes = append(nodes, n)
	}
	l.Nodes = nodes
}

// guardTemplate rewrites one template file's text with ticks. A file that
// does not parse is returned as it is: Helm reports its error, with the
// file's own line numbers.
func guardTemplate(name, text string) string {
	if !strings.Contains(text, "{{") {
		return text
	}
	trees := map[string]*parse.Tree{}
	t := parse.New(name)
	t.Mode = parse.SkipFuncCheck
	if _, err := t.Parse(text, "", "", trees); err != nil {
		return text
	}
	w := &rewriter{out: map[int]*parse.ActionNode{}}
	var b strings.Builder
	if main := trees[name]; main != nil {
		w.list(main.Root, true)
		b.WriteString(main.Root.String())
	}
	for _, n := range slices.Sorted(maps.Keys(trees)) {
		tr := trees[n]
		if n == name || tr.Root == nil {
			continue
		}
		w.list(tr.Root, true)
		fmt.Fprintf(&b, "{{define %q}}%s{{end}}", n, tr.Root.String())
	}
	return b.String()
}

// guardText rewrites template text given to tpl; what is not a string is
// passed on for tpl to refuse as it would.
func guardText(v any) any {
	if s, ok := v.(string); ok {
		return guardTemplate("tpl", s)
	}
	return v
}
