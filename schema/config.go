package schema

// Form says how a branch's configuration was found (spec §1).
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
}
