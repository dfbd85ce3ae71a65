package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/api/resource"
)

// FieldError is one problem in the configuration file.
type FieldError struct {
	File    string
	Line    int
	Field   string // dotted path, e.g. apps[1].poll_interval; "" for the file as a whole
	Message string
}

func (e FieldError) Error() string {
	pos := e.File
	if e.Line > 0 {
		pos = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return pos + ": " + e.Message
	}
	return pos + ": " + e.Field + ": " + e.Message
}

// Errors is every problem found in one file, in file order.
type Errors []FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads and checks the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("daemon config: %w", err)
	}
	return Parse(path, data)
}

// Parse checks and decodes a configuration held in data; file names it in errors
// and anchors relative paths.
func Parse(file string, data []byte) (*Config, error) {
	root, err := parseNode(file, data)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: file, lines: map[string]int{}}
	d.shape(root, reflect.TypeOf(Config{}), "")
	if len(d.errs) > 0 {
		return nil, d.sorted()
	}
	cfg := &Config{File: file}
	if err := root.Decode(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	cfg.setDefaults()
	d.validate(cfg)
	if len(d.errs) > 0 {
		return nil, d.sorted()
	}
	return cfg, nil
}

// parseNode reads the single YAML document of the file.
func parseNode(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Message: "empty file: at least one app is required"}}
		}
		return nil, Errors{{File: file, Line: yamlErrorLine(err), Message: yamlErrorText(err)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: file, Line: extra.Line, Message: "more than one YAML document; write one"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	return root, nil
}

// yamlErrorLine pulls "line N" out of a yaml.v3 syntax error.
func yamlErrorLine(err error) int {
	s := err.Error()
	i := strings.Index(s, "line ")
	if i < 0 {
		return 0
	}
	s = s[i+len("line "):]
	j := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if j < 0 {
		j = len(s)
	}
	n, _ := strconv.Atoi(s[:j])
	return n
}

func yamlErrorText(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.Index(s, ": "); i >= 0 && strings.HasPrefix(s, "line ") {
		s = s[i+2:]
	}
	return "invalid YAML: " + s
}

// decoder checks a node tree against the Go types before decoding, so every
// problem is reported with its line and field, and remembers the line of each
// field for the checks that follow decoding.
type decoder struct {
	file  string
	errs  Errors
	lines map[string]int // field path → line
}

func (d *decoder) errorf(line int, field, format string, args ...any) {
	d.errs = append(d.errs, FieldError{File: d.file, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

// fail reports a problem at a field whose line was recorded by shape.
func (d *decoder) fail(field, format string, args ...any) {
	d.errorf(d.line(field), field, format, args...)
}

// line returns the line of field, or of its nearest recorded parent.
func (d *decoder) line(field string) int {
	for f := field; ; f = parent(f) {
		if l, ok := d.lines[f]; ok {
			return l
		}
		if f == "" {
			return 0
		}
	}
}

func parent(field string) string {
	i := strings.LastIndexAny(field, ".[")
	if i < 0 {
		return ""
	}
	return field[:i]
}

func (d *decoder) sorted() Errors {
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
	return d.errs
}

var (
	durationType = reflect.TypeOf(Duration{})
	byteSizeType = reflect.TypeOf(ByteSize{})
)

// shape checks that node can decode into t: known keys only, the right kinds
// of node, scalars of the right type.
func (d *decoder) shape(node *yaml.Node, t reflect.Type, field string) {
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	d.lines[field] = node.Line
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return // absent: the default applies
	}
	switch {
	case t == durationType:
		d.duration(node, field)
	case t == byteSizeType:
		d.byteSize(node, field)
	case t.Kind() == reflect.Struct:
		d.structure(node, t, field)
	case t.Kind() == reflect.Map:
		d.mapping(node, t, field)
	case t.Kind() == reflect.Slice:
		d.sequence(node, t, field)
	default:
		d.scalar(node, t, field)
	}
}

func (d *decoder) structure(node *yaml.Node, t reflect.Type, field string) {
	if node.Kind != yaml.MappingNode {
		d.errorf(node.Line, field, "expected a mapping, found %s", describe(node))
		return
	}
	fields := map[string]reflect.Type{}
	var known []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = t.Field(i).Type
		known = append(known, tag)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		sub := join(field, k.Value)
		ft, ok := fields[k.Value]
		switch {
		case !ok:
			d.errorf(k.Line, sub, "unknown key (known keys: %s)", strings.Join(known, ", "))
		case seen[k.Value]:
			d.errorf(k.Line, sub, "duplicate key")
		default:
			d.shape(v, ft, sub)
		}
		seen[k.Value] = true
	}
}

func (d *decoder) mapping(node *yaml.Node, t reflect.Type, field string) {
	if node.Kind != yaml.MappingNode {
		d.errorf(node.Line, field, "expected a mapping, found %s", describe(node))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		sub := join(field, k.Value)
		if seen[k.Value] {
			d.errorf(k.Line, sub, "duplicate key")
		}
		seen[k.Value] = true
		d.shape(v, t.Elem(), sub)
	}
}

func (d *decoder) sequence(node *yaml.Node, t reflect.Type, field string) {
	if node.Kind != yaml.SequenceNode {
		d.errorf(node.Line, field, "expected a list, found %s", describe(node))
		return
	}
	for i, item := range node.Content {
		d.shape(item, t.Elem(), fmt.Sprintf("%s[%d]", field, i))
	}
}

func (d *decoder) scalar(node *yaml.Node, t reflect.Type, field string) {
	if node.Kind != yaml.ScalarNode {
		d.errorf(node.Line, field, "expected a %s, found %s", kindName(t), describe(node))
		return
	}
	switch t.Kind() {
	case reflect.String:
		// any scalar reads as its text
	case reflect.Int:
		if node.Tag != "!!int" {
			d.errorf(node.Line, field, "expected an integer, found %q", node.Value)
		}
	case reflect.Bool:
		if node.Tag != "!!bool" {
			d.errorf(node.Line, field, "expected true or false, found %q", node.Value)
		}
	}
}

func (d *decoder) duration(node *yaml.Node, field string) {
	if node.Kind != yaml.ScalarNode {
		d.errorf(node.Line, field, "expected a duration such as 30s or 5m, found %s", describe(node))
		return
	}
	if _, err := time.ParseDuration(node.Value); err != nil {
		d.errorf(node.Line, field, "invalid duration %q: write it like 30s, 5m or 1h30m", node.Value)
	}
}

// UnmarshalYAML reads a duration string; shape has already checked it.
func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	v, err := time.ParseDuration(node.Value)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q", node.Line, node.Value)
	}
	d.Duration = v
	return nil
}

func (d *decoder) byteSize(node *yaml.Node, field string) {
	if node.Kind != yaml.ScalarNode {
		d.errorf(node.Line, field, "expected a size such as 512Mi or 1Gi, found %s", describe(node))
		return
	}
	if _, err := parseByteSize(node.Value); err != nil {
		d.errorf(node.Line, field, "%v", err)
	}
}

// UnmarshalYAML reads a size; shape has already checked it.
func (b *ByteSize) UnmarshalYAML(node *yaml.Node) error {
	n, err := parseByteSize(node.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", node.Line, err)
	}
	b.Bytes = n
	return nil
}

func parseByteSize(s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() < 0 {
		return 0, fmt.Errorf("invalid size %q: write it like 512Mi or 1Gi", s)
	}
	n, ok := q.AsInt64()
	if !ok {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	return n, nil
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int:
		return "integer"
	case reflect.Bool:
		return "boolean"
	default:
		return "string"
	}
}
