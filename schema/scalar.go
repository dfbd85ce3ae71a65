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
		return fmt.Errorf("line %d: expected a single value, found a %s", n.Line, kindName(n.Kind))
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
		return fmt.Errorf("line %d: expected a number, found a %s", n.Line, kindName(n.Kind))
	}
	v, err := strconv.Atoi(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("line %d: %q is not a whole number", n.Line, n.Value)
	}
	*i = Int(v)
	return nil
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
