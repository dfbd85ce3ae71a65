package config

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/arbordev/arbor/schema"
	"k8s.io/apimachinery/pkg/api/resource"
)

// FieldError is one problem in the configuration file, at FILE:LINE:COL
// (the parts that are known).
type FieldError struct {
	schema.Position
	Field   string // dotted path, e.g. apps[1].poll_interval; "" for the file as a whole
	Message string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Position.String() + ": " + e.Message
	}
	return e.Position.String() + ": " + e.Field + ": " + e.Message
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
	doc, err := parseDoc(file, data)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: file, doc: doc}
	d.shape(doc.Root(), reflect.TypeOf(Config{}), "")
	if len(d.errs) > 0 {
		return nil, d.sorted()
	}
	cfg := &Config{File: file}
	if err := doc.Root().Decode(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	cfg.setDefaults()
	d.validate(cfg)
	if len(d.errs) > 0 {
		return nil, d.sorted()
	}
	return cfg, nil
}

// parseDoc reads the single YAML document of the file through schema's
// reader, which the template loader uses too.
func parseDoc(file string, data []byte) (*schema.Document, error) {
	doc, found := schema.ParseYAML(file, data)
	if found.HasErrors() {
		var errs Errors
		for _, f := range found.Errors() {
			errs = append(errs, FieldError{Position: f.Position, Field: f.Field, Message: f.Message})
		}
		return nil, errs
	}
	if doc.Root() == nil {
		return nil, Errors{{Position: schema.Position{File: file}, Message: "empty file: at least one app is required"}}
	}
	if at, ok := doc.Extra(); ok {
		return nil, Errors{{Position: at, Message: "more than one YAML document; write one"}}
	}
	return doc, nil
}

// decoder checks a node tree against the Go types before decoding, so every
// problem is reported with its position and field; the checks that follow
// decoding find a field's position in the parsed document.
type decoder struct {
	file string
	doc  *schema.Document
	errs Errors
}

// fail reports a problem at a field, placed where the file writes it (the
// key of a mapping entry, as the template's findings are placed) or, for a
// field the file leaves out, its nearest written parent.
func (d *decoder) fail(field, format string, args ...any) {
	d.errs = append(d.errs, FieldError{Position: d.doc.Position(field), Field: field, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) sorted() Errors {
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	})
	return d.errs
}

var (
	durationType = reflect.TypeOf(Duration{})
	globType     = reflect.TypeOf(schema.Glob{})
	byteSizeType = reflect.TypeOf(ByteSize{})
)

// shape checks that node can decode into t: known keys only, the right kinds
// of node, scalars of the right type.
func (d *decoder) shape(node *yaml.Node, t reflect.Type, field string) {
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return // absent: the default applies
	}
	switch {
	case t == durationType:
		d.duration(node, field)
	case t == globType:
		d.glob(node, field)
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
		d.fail(field, "expected a mapping, found %s", describe(node))
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
			d.fail(sub, "unknown key (known keys: %s)", strings.Join(known, ", "))
		case seen[k.Value]:
			// ParseYAML reported it.
		default:
			d.shape(v, ft, sub)
		}
		seen[k.Value] = true
	}
}

func (d *decoder) mapping(node *yaml.Node, t reflect.Type, field string) {
	if node.Kind != yaml.MappingNode {
		d.fail(field, "expected a mapping, found %s", describe(node))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		if !seen[k.Value] { // a duplicate: ParseYAML reported it
			d.shape(v, t.Elem(), join(field, k.Value))
		}
		seen[k.Value] = true
	}
}

func (d *decoder) sequence(node *yaml.Node, t reflect.Type, field string) {
	if node.Kind != yaml.SequenceNode {
		d.fail(field, "expected a list, found %s", describe(node))
		return
	}
	for i, item := range node.Content {
		d.shape(item, t.Elem(), fmt.Sprintf("%s[%d]", field, i))
	}
}

func (d *decoder) scalar(node *yaml.Node, t reflect.Type, field string) {
	if node.Kind != yaml.ScalarNode {
		d.fail(field, "expected a %s, found %s", kindName(t), describe(node))
		return
	}
	switch t.Kind() {
	case reflect.String:
		// any scalar reads as its text
	case reflect.Int:
		if node.Tag != "!!int" {
			d.fail(field, "expected an integer, found %q", node.Value)
		}
	case reflect.Bool:
		if node.Tag != "!!bool" {
			d.fail(field, "expected true or false, found %q", node.Value)
		}
	}
}

func (d *decoder) duration(node *yaml.Node, field string) {
	d.text(node, field, "a duration such as 30s or 5m", func(s string) error {
		if _, err := time.ParseDuration(s); err != nil {
			return fmt.Errorf("invalid duration %q: write it like 30s, 5m or 1h30m", s)
		}
		return nil
	})
}

func (d *decoder) glob(node *yaml.Node, field string) {
	d.text(node, field, "a branch pattern", func(s string) error {
		_, err := schema.ParseGlob(s)
		return err
	})
}

// text checks a scalar that parse must accept; what names the value expected.
func (d *decoder) text(node *yaml.Node, field, what string, parse func(string) error) {
	if node.Kind != yaml.ScalarNode {
		d.fail(field, "expected %s, found %s", what, describe(node))
		return
	}
	if err := parse(node.Value); err != nil {
		d.fail(field, "%v", err)
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
	d.text(node, field, "a size such as 512Mi or 1Gi", func(s string) error {
		_, err := parseByteSize(s)
		return err
	})
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
