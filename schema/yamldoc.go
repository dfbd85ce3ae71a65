package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the values one document may expand to through aliases, so
// that an "alias bomb" is a finding rather than an exhausted machine.
const maxNodes = 200000

// maxDepth bounds nesting, for the same reason.
const maxDepth = 200

// Document is one parsed YAML file: its root node, the same content as plain
// values (for the JSON Schema) and the position of every field path. It is
// the one reader of YAML positions in arbor: the template loader and the
// daemon configuration (package config) both parse through ParseYAML, so a
// bad file is reported at the same FILE:LINE:COL by both.
type Document struct {
	file   string
	root   *yaml.Node // the top-level value (not the DocumentNode); nil when empty
	value  any
	index  map[string]Position
	byLine map[int]string // first field path seen at each line
	extra  Position       // where a second document starts; zero when there is none
}

// ParseYAML parses the first YAML document in data. Syntax errors, duplicate
// keys and excessive aliasing are returned as error findings; the Document
// is nil when the file could not be parsed at all. An empty file gives a
// Document whose Root is nil.
func ParseYAML(file string, data []byte) (*Document, Findings) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var top yaml.Node
	if err := dec.Decode(&top); err != nil {
		if errors.Is(err, io.EOF) {
			return &Document{file: file, index: map[string]Position{}, byLine: map[int]string{}}, nil
		}
		return nil, Findings{yamlErrorFinding(file, err)}
	}
	d := &Document{file: file, index: map[string]Position{}, byLine: map[int]string{}}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.extra = Position{File: file, Line: extra.Line, Column: extra.Column}
	}
	if len(top.Content) > 0 {
		d.root = top.Content[0]
	}
	if d.root == nil {
		return d, nil
	}
	w := walker{doc: d}
	d.value = w.convert(d.root, "", d.root.Line, d.root.Column, 0)
	if w.budgetExceeded {
		d.value = nil
	}
	return d, w.findings
}

// parseDocument is ParseYAML for the template loader, where a second
// document is a warning.
func parseDocument(file string, data []byte) (*Document, Findings) {
	d, found := ParseYAML(file, data)
	if d != nil && d.extra.Line > 0 {
		found = append(found, Finding{Position: d.extra, Severity: SeverityWarning,
			Message: "the file holds more than one YAML document; only the first is read"})
	}
	return d, found
}

// Root returns the document's top-level value, nil for an empty file.
func (d *Document) Root() *yaml.Node { return d.root }

// Extra returns where a second document starts, if the file holds one.
func (d *Document) Extra() (Position, bool) { return d.extra, d.extra.Line > 0 }

// Position returns where field (a dotted path such as apps[1].poll_interval)
// is written: for a mapping entry, its key. A field that is not written gets
// the position of its nearest written parent, failing that the file.
func (d *Document) Position(field string) Position {
	return nearestPosition(d.index, field, Position{File: d.file})
}

// nearestPosition looks field up in index, then each of its parents in turn.
func nearestPosition(index map[string]Position, field string, none Position) Position {
	for {
		if p, ok := index[field]; ok {
			return p
		}
		parent := parentField(field)
		if parent == field {
			return none
		}
		field = parent
	}
}

// walker converts a node tree to plain values while recording positions.
type walker struct {
	doc            *Document
	nodes          int
	aliases        AliasBudget
	budgetExceeded bool
	inAlias        int
	findings       Findings
}

func (w *walker) record(path string, line, col int) {
	if _, ok := w.doc.index[path]; !ok {
		w.doc.index[path] = Position{File: w.doc.file, Line: line, Column: col}
	}
	// Decode errors name only a line: remember the deepest field written
	// there, ignoring content copied in through aliases.
	if path != "" && w.inAlias == 0 && len(path) > len(w.doc.byLine[line]) {
		w.doc.byLine[line] = path
	}
}

func (w *walker) fail(line, col int, msg string) {
	w.findings = append(w.findings, Finding{Position: Position{File: w.doc.file, Line: line, Column: col},
		Severity: SeverityError, Message: msg})
}

// convert returns n as map[string]any, []any, string, bool, int64, float64 or
// nil. path is n's field path; line and col are where n is named (the key of a
// mapping entry, else the node itself).
func (w *walker) convert(n *yaml.Node, path string, line, col, depth int) any {
	if w.budgetExceeded {
		return nil
	}
	w.nodes++
	if w.nodes > maxNodes || depth > maxDepth || (w.inAlias > 0 && !w.aliases.spend(n)) {
		w.budgetExceeded = true
		w.fail(n.Line, n.Column, tooLarge)
		return nil
	}
	w.record(path, line, col)
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil
		}
		w.inAlias++
		defer func() { w.inAlias-- }()
		return w.convert(n.Alias, path, line, col, depth+1)
	case yaml.MappingNode:
		return w.mapping(n, path, depth)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			out = append(out, w.convert(item, fmt.Sprintf("%s[%d]", path, i), item.Line, item.Column, depth+1))
		}
		return out
	case yaml.ScalarNode:
		return scalarValue(n)
	default:
		return nil
	}
}

func (w *walker) mapping(n *yaml.Node, path string, depth int) map[string]any {
	out := map[string]any{}
	seen := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		key := keyText(k)
		child := joinField(path, key)
		if first, dup := seen[key]; dup {
			w.findings = append(w.findings, Finding{Position: Position{File: w.doc.file, Line: k.Line, Column: k.Column},
				Field: child, Severity: SeverityError,
				Message: fmt.Sprintf("duplicate key %q (first defined at line %d)", key, first)})
			continue
		}
		seen[key] = k.Line
		out[key] = w.convert(v, child, k.Line, k.Column, depth+1)
	}
	for _, m := range merges {
		w.merge(out, m, path, depth)
	}
	return out
}

// merge applies a YAML merge key (<<: *anchor or <<: [*a, *b]): keys written
// in the mapping itself win, then earlier sources over later ones.
func (w *walker) merge(out map[string]any, m *yaml.Node, path string, depth int) {
	if m.Kind == yaml.AliasNode && m.Alias != nil {
		m = m.Alias
		w.inAlias++
		defer func() { w.inAlias-- }()
	}
	switch m.Kind {
	case yaml.MappingNode:
		src, _ := w.convert(m, path, m.Line, m.Column, depth+1).(map[string]any)
		for k, v := range src {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	case yaml.SequenceNode:
		for _, item := range m.Content {
			w.merge(out, item, path, depth+1)
		}
	default:
		w.fail(m.Line, m.Column, "a merge key (<<) must name a mapping or a list of mappings")
	}
}

// keyText returns a mapping key as text; complex keys are described rather than rendered.
func keyText(k *yaml.Node) string {
	if k.Kind == yaml.ScalarNode {
		return k.Value
	}
	if k.Kind == yaml.AliasNode && k.Alias != nil && k.Alias.Kind == yaml.ScalarNode {
		return k.Alias.Value
	}
	return fmt.Sprintf("<%s at line %d>", kindName(k.Kind), k.Line)
}

// scalarValue types a scalar the way YAML 1.2's core schema (and yaml.v3) does.
func scalarValue(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return i
		}
		var f float64
		if n.Decode(&f) == nil {
			return f
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			return f
		}
	}
	return n.Value
}

// joinField appends a key to a dotted field path.
func joinField(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlErrorFinding turns a yaml.v3 parse error ("yaml: line 5: did not find
// expected key") into a finding at that line.
func yamlErrorFinding(file string, err error) Finding {
	msg := err.Error()
	f := Finding{Position: Position{File: file, Line: 1}, Severity: SeverityError}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		f.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if isParserError(msg) {
			// yaml.v3 numbers parser errors (unlike scanner errors) from 0:
			// the line is where the enclosing block or flow collection starts.
			f.Line++
		}
	}
	f.Message = "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
	return f
}

// parserErrors are the messages of yaml.v3's parser (as opposed to its scanner).
var parserErrors = []string{
	"did not find expected key",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected <document start>",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
	"found duplicate %TAG directive",
}

func isParserError(msg string) bool {
	for _, p := range parserErrors {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// decodeErrorFindings turns the errors of yaml.v3's Decode (a *yaml.TypeError
// listing "line N: cannot unmarshal ...") into findings placed at the field
// that starts at that line.
func (d *Document) decodeErrorFindings(err error, prefix string) Findings {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var found Findings
	for _, msg := range msgs {
		f := Finding{Position: Position{File: d.file}, Severity: SeverityError}
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			f.Line, _ = strconv.Atoi(m[1])
			msg = m[2]
			if path, ok := d.byLine[f.Line]; ok {
				f.Position = d.index[path]
				f.Field = joinField(prefix, path)
			}
		}
		f.Message = strings.TrimPrefix(msg, "yaml: ")
		found = append(found, f)
	}
	return found
}
