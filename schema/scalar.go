package schema

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Scalar is text written as any YAML scalar: `value: 3`, `value: true` and
// `value: "3"` all give the text as written. Release files quote inconsistently.
type Scalar string

// UnmarshalYAML accepts any scalar node and keeps its text.
func (s *Scalar) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, fmt.Sprintf("expected a single value, found a %s", kindName(n.Kind)))
	}
	if n.Tag == "!!null" {
		*s = ""
		return nil
	}
	*s = Scalar(n.Value)
	return nil
}

// String returns the text.
func (s Scalar) String() string { return string(s) }

// Int is a whole number that may be written as a quoted string ("8080").
type Int int

// UnmarshalYAML accepts an integer or a string holding one.
func (i *Int) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, fmt.Sprintf("expected a number, found a %s", kindName(n.Kind)))
	}
	v, err := strconv.Atoi(strings.TrimSpace(n.Value))
	if err != nil {
		return typeError(n, fmt.Sprintf("%q is not a whole number", n.Value))
	}
	*i = Int(v)
	return nil
}

// typeError reports a bad value the way yaml.v3 does, so that decoding goes on
// with the rest of the document and the loader can place the error by line.
func typeError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	case yaml.DocumentNode:
		return "document"
	default:
		return "value"
	}
}
