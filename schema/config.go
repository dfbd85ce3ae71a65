package schema

import "strings"

// Form says how a branch's configuration was found (docs/release-yaml.md#finding-the-configuration).
type Form string

// The ways a configuration can be found.
const (
	FormPointer Form = "pointer" // .release.yaml names the template file
	FormInline  Form = "inline"  // .release.yaml is the template
	FormDefault Form = "default" // no .release.yaml; .release/application_template.yaml
	FormCompose Form = "compose" // pointer form naming only a compose file
)

// Config is one branch's loaded configuration: the template, its environment
// variables, and where each came from.
type Config struct {
	Form         Form
	TemplateFile string // path in the tree of the file holding the template
	EnvVarsFile  string // path of the env-vars document; "" when inline or absent
	Template     *Template
	EnvVars      *EnvVars // never nil after a successful load

	// Hash identifies the configuration's content (every file read), so that
	// a change of configuration can be told from a change of code alone.
	Hash string

	// positions maps field paths to where they are written. Paths of the
	// environment-variables document are under "environment_variables.",
	// whether it is inline or a file of its own.
	positions map[string]Position
}

// Position returns where field (a dotted path such as
// services[2].ports[0].port, or environment_variables.services.web[0].value for
// the env-vars document) is written. A field that is not written (a default)
// gets the position of its nearest written parent; failing that, the template
// file as a whole.
func (c *Config) Position(field string) Position {
	return nearestPosition(c.positions, field, Position{File: c.TemplateFile})
}

// parentField strips the last key or index from a field path; "" stays "".
func parentField(field string) string {
	i := strings.LastIndexAny(field, ".[")
	if i < 0 {
		return ""
	}
	return field[:i]
}
