package schema

import (
	"bytes"

	"gopkg.in/yaml.v3"
)

// MarshalTemplate writes a template as YAML that Load reads back unchanged
// (keys in the order of the Template type, two-space indents).
func MarshalTemplate(t *Template) ([]byte, error) { return marshal(t) }

// MarshalEnvVars writes an environment-variables document as YAML.
func MarshalEnvVars(e *EnvVars) ([]byte, error) {
	if len(e.Defaults) == 0 && len(e.Services) == 0 && len(e.Mapping) == 0 {
		return []byte("defaults: []\n"), nil
	}
	return marshal(e)
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
