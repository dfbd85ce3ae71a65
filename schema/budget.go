package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// maxAliasBytes bounds the bytes of the scalars reached through aliases: an
// alias bomb built from long strings multiplies bytes with few nodes.
const maxAliasBytes = 4 << 20

// tooLarge is the message of a document over the budget.
const tooLarge = "the document is too large or too deeply nested (aliases expanded)"

// AliasBudget is what YAML read together may cost once its aliases are
// expanded: the values reached through an alias, and the bytes of the scalars
// among them. The .release.yaml loader gives each file its own budget; a
// kustomize build shares one between every file kustomize will parse, since it
// holds them all expanded at once. The zero value is a full budget.
type AliasBudget struct {
	nodes int
	bytes int
}

// spend charges the budget with n, reached through an alias, and reports
// whether the budget still holds.
func (b *AliasBudget) spend(n *yaml.Node) bool {
	b.nodes++
	if n.Kind == yaml.ScalarNode {
		b.bytes += len(n.Value)
	}
	return b.nodes <= maxNodes && b.bytes <= maxAliasBytes
}

// CheckYAML parses every document of data and charges b with what expanding
// its aliases would add, without expanding them. It returns an error naming
// file:line:column when the budget runs out or nesting goes deeper than the
// .release.yaml loader allows, and an error when data is not YAML. Content
// written out (not through an alias) costs nothing here: the caller bounds it
// by the size of data.
func (b *AliasBudget) CheckYAML(file string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			f := yamlErrorFinding(file, err)
			return fmt.Errorf("%s:%d: %s", file, f.Line, f.Message)
		}
		if n := b.walk(&doc, 0, false); n != nil {
			return fmt.Errorf("%s:%d:%d: %s", file, n.Line, n.Column, tooLarge)
		}
	}
}

// walk visits n as expansion would, charging b for what is reached through an
// alias; it returns the node where the budget or the depth ran out, else nil.
func (b *AliasBudget) walk(n *yaml.Node, depth int, aliased bool) *yaml.Node {
	if depth > maxDepth || (aliased && !b.spend(n)) {
		return n
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil
		}
		return b.walk(n.Alias, depth+1, true)
	}
	for _, c := range n.Content {
		if bad := b.walk(c, depth+1, aliased); bad != nil {
			return bad
		}
	}
	return nil
}
