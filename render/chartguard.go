package render

import (
	"errors"
	"fmt"
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
// the end in whatever goroutine calls it. So that a chart whose templates
// loop (a range nested over large lists, an include that fans out, a range
// over a huge number) cannot hold a CPU for ever, each template is rewritten
// before Helm parses it: a call to guardTickFunc is put at the start of every
// range body and of every template and define. The call costs a counter
// increment; once the render's deadline has passed, or the ticks exceed
// maxTicks, it returns an error, which text/template turns into the end of
// the execution. Between two ticks a template does a bounded amount of work
// (its own text, once), so the output is bounded too. The functions that
// allocate by a count (until, untilStep, repeat, rand*) are replaced with
// versions that refuse large counts. What remains unguarded is template text
// built at run time and passed to tpl: it is parsed by Helm, not here
// (docs/charts.md says so).
const (
	guardTickFunc = "arborGuardTick"
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
		guardTickFunc: g.tick,
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
	for _, name := range []string{"randAlphaNum", "randAlpha", "randNumeric", "randAscii"} {
		f := sp[name].(func(int) string)
		fm[name] = func(n int) (string, error) {
			if err := count(name, n); err != nil {
				return "", err
			}
			return f(n), nil
		}
	}
	if f, ok := sp["randBytes"].(func(int) (string, error)); ok {
		fm["randBytes"] = func(n int) (string, error) {
			if err := count("randBytes", n); err != nil {
				return "", err
			}
			return f(n)
		}
	}
	return fm
}

// tickNode is a parsed {{arborGuardTick}} action, put into parse trees.
var tickNode = func() parse.Node {
	t := parse.New("tick")
	t.Mode = parse.SkipFuncCheck
	tr, err := t.Parse("{{"+guardTickFunc+"}}", "", "", map[string]*parse.Tree{})
	if err != nil {
		panic(err)
	}
	return tr.Root.Nodes[0]
}()

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
	var b strings.Builder
	if main := trees[name]; main != nil {
		guardList(main.Root)
		b.WriteString(main.Root.String())
	}
	for _, n := range slices.Sorted(maps.Keys(trees)) {
		tr := trees[n]
		if n == name || tr.Root == nil {
			continue
		}
		guardList(tr.Root)
		fmt.Fprintf(&b, "{{define %q}}%s{{end}}", n, tr.Root.String())
	}
	return b.String()
}

// guardList puts a tick first in l and in every range body under it.
func guardList(l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		guardNode(n)
	}
	l.Nodes = append([]parse.Node{tickNode}, l.Nodes...)
}

func guardNode(n parse.Node) {
	switch x := n.(type) {
	case *parse.RangeNode:
		guardList(x.List)
		guardChildren(x.ElseList)
	case *parse.IfNode:
		guardChildren(x.List)
		guardChildren(x.ElseList)
	case *parse.WithNode:
		guardChildren(x.List)
		guardChildren(x.ElseList)
	case *parse.ListNode:
		guardChildren(x)
	}
}

// guardChildren guards the ranges inside l without a tick of its own: an if
// or with body runs once per execution of what holds it.
func guardChildren(l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		guardNode(n)
	}
}
