package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"path"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/arbordev/arbor/internal/repofs"
)

// Release's default locations, read when a branch has no .release.yaml (docs/release-yaml.md#finding-the-configuration).
const (
	DefaultConfigFile   = ".release.yaml"
	DefaultTemplateFile = ".release/application_template.yaml"
	DefaultEnvVarsFile  = ".release/environment_variables.yaml"
)

// DefaultMaxFileSize is the largest configuration file (.release.yaml, the
// template, the env-vars file, a compose file) Load reads when
// LoadOptions.MaxFileSize is not set. Real configurations are a few KiB; the
// limit keeps a hostile branch from making the loader hold and parse
// hundreds of megabytes.
const DefaultMaxFileSize = 1 << 20

// envPrefix is the field path under which the environment-variables document
// is found by Config.Position, whether it was inline or in its own file.
const envPrefix = "environment_variables"

// ErrNoConfig is returned by Load when the tree holds neither the named
// .release.yaml nor Release's default .release/application_template.yaml:
// the branch gets no environment.
var ErrNoConfig = errors.New("no configuration found")

// LoadOptions tune Load.
type LoadOptions struct {
	// Strict makes unknown keys errors instead of warnings.
	Strict bool
	// Parameters are the values the caller knows (from the daemon config or
	// --param); a required parameter missing from them is an error.
	Parameters map[string]string
	// MaxFileSize is the largest configuration file read, in bytes
	// (DefaultMaxFileSize when zero or less). A larger file is an error
	// finding, found before the file is read.
	MaxFileSize int64
}

func (o LoadOptions) maxFileSize() int64 {
	if o.MaxFileSize > 0 {
		return o.MaxFileSize
	}
	return DefaultMaxFileSize
}

// errRefused says that read refused a file under the rules of package
// repofs (a link out of the repository, not a regular file, too large) and
// added the finding that says so: the caller stops reading that part.
var errRefused = errors.New("configuration file refused")

// Load reads a branch's configuration from fsys. name is the path of the
// .release.yaml file, normally DefaultConfigFile. Files are read with
// repofs.ReadFile: a file that is not a regular file, is larger than
// LoadOptions.MaxFileSize or is a link out of the repository is an error
// finding at that file, refused before it is read.
//
// The error is ErrNoConfig (wrapped) when there is no configuration at all, or
// an I/O error. Everything wrong with the content is a Finding; the Config is
// returned whenever it could be decoded, so callers check Findings.HasErrors.
// Template and EnvVars are never nil in a returned Config.
func Load(fsys fs.FS, name string, opts LoadOptions) (*Config, Findings, error) {
	l := &loader{
		fsys: fsys,
		opts: opts,
		hash: sha256.New(),
		cfg: &Config{
			Template:  &Template{},
			EnvVars:   &EnvVars{},
			positions: map[string]Position{},
		},
	}
	if err := l.load(path.Clean(name)); err != nil && !errors.Is(err, errRefused) {
		return nil, nil, err
	}
	l.cfg.Hash = hex.EncodeToString(l.hash.Sum(nil))
	// A value the schema rejected decodes as a zero value: do not also
	// report the zero value's problems.
	l.findings = append(l.findings, dedupe(check(l.cfg, l.fsys, l.opts), l.findings)...)
	l.findings.Sort()
	return l.cfg, l.findings, nil
}

// loader carries one Load call's state.
type loader struct {
	fsys     fs.FS
	opts     LoadOptions
	hash     hash.Hash
	cfg      *Config
	findings Findings
}

func (l *loader) add(more ...Finding) { l.findings = append(l.findings, more...) }

// read returns a file's content and adds it to the configuration hash.
// A missing file is (nil, false, nil); a refused one is an error finding and
// (nil, true, errRefused).
func (l *loader) read(name string) ([]byte, bool, error) {
	data, err := repofs.ReadFile(l.fsys, name, l.opts.maxFileSize())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if repofs.Refused(err) {
		l.add(Finding{Position: Position{File: name}, Severity: SeverityError, Message: pathReason(err)})
		return nil, true, errRefused
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", name, err)
	}
	// Length-prefix each part so that no two sets of files hash alike.
	fmt.Fprintf(l.hash, "%d:%s\n%d:", len(name), name, len(data))
	l.hash.Write(data)
	return data, true, nil
}

// pathReason is an *fs.PathError's reason without its operation and path,
// for a finding that names the file already. repofs's reasons name the link
// that was refused.
func pathReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (l *loader) load(name string) error {
	data, ok, err := l.read(name)
	if err != nil {
		l.cfg.Form, l.cfg.TemplateFile = FormInline, name
		return err
	}
	if !ok {
		return l.loadDefault(name)
	}
	doc, parsed := parseDocument(name, data)
	l.add(parsed...)
	if doc == nil {
		l.cfg.Form = FormInline
		l.cfg.TemplateFile = name
		return nil
	}
	if isPointer(doc.root) {
		return l.loadPointer(doc)
	}
	l.cfg.Form = FormInline
	return l.loadTemplate(doc, true)
}

// loadDefault reads Release's default .release/ files.
func (l *loader) loadDefault(name string) error {
	data, ok, err := l.read(DefaultTemplateFile)
	if err != nil {
		l.cfg.Form, l.cfg.TemplateFile = FormDefault, DefaultTemplateFile
		return err
	}
	if !ok {
		return fmt.Errorf("neither %s nor %s: %w", name, DefaultTemplateFile, ErrNoConfig)
	}
	l.cfg.Form = FormDefault
	if err := l.templateFile(DefaultTemplateFile, data); err != nil {
		return err
	}
	return l.envVarsFile(DefaultEnvVarsFile, Position{}, false)
}

// isPointer tells the pointer form: a mapping naming a template or compose file.
func isPointer(root *yaml.Node) bool {
	if root == nil || root.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "application_template", "compose":
			return true
		}
	}
	return false
}

// pointer is the content of a pointer-form .release.yaml.
type pointer struct {
	ApplicationTemplate string `yaml:"application_template"`
	EnvironmentVars     string `yaml:"environment_variables"`
	Compose             string `yaml:"compose"`
}

func (l *loader) loadPointer(doc *Document) error {
	l.cfg.Form = FormPointer
	l.add(validateSchema(doc, pointerSchema(), "", l.opts.Strict)...)
	l.add(acceptedKeyWarnings(doc, "", []string{"builds"})...)
	var p pointer
	if err := doc.root.Decode(&p); err != nil {
		l.add(doc.decodeErrorFindings(err, "")...)
	}
	switch {
	case p.ApplicationTemplate != "":
		if p.Compose != "" {
			l.add(doc.warning("compose", "ignored: application_template is also given"))
		}
		if err := l.pointedTemplate(doc, "application_template", p.ApplicationTemplate); err != nil {
			return err
		}
	case p.Compose != "":
		l.cfg.Form = FormCompose
		if err := l.composeFile(doc, p.Compose); err != nil {
			return err
		}
	}
	if p.EnvironmentVars != "" {
		target, ok := l.resolve(doc, "environment_variables", p.EnvironmentVars)
		if ok {
			return l.envVarsFile(target, doc.index["environment_variables"], true)
		}
	}
	return nil
}

// resolve turns a path written in a configuration file into a path in the
// tree, refusing paths that leave the repository.
func (l *loader) resolve(doc *Document, field, p string) (string, bool) {
	clean := path.Clean(strings.TrimPrefix(p, "/"))
	if path.IsAbs(p) || clean == ".." || strings.HasPrefix(clean, "../") || !fs.ValidPath(clean) {
		l.add(doc.error(field, fmt.Sprintf("path %q must be relative to the repository root and stay inside it", p)))
		return "", false
	}
	return clean, true
}

func (l *loader) pointedTemplate(doc *Document, field, p string) error {
	target, ok := l.resolve(doc, field, p)
	if !ok {
		return nil
	}
	data, found, err := l.read(target)
	if err != nil {
		l.cfg.TemplateFile = target
		return err
	}
	if !found {
		l.cfg.TemplateFile = target
		l.add(doc.error(field, fmt.Sprintf("file %s does not exist", target)))
		return nil
	}
	return l.templateFile(target, data)
}

func (l *loader) templateFile(name string, data []byte) error {
	doc, parsed := parseDocument(name, data)
	l.add(parsed...)
	if doc == nil {
		l.cfg.TemplateFile = name
		return nil
	}
	return l.loadTemplate(doc, false)
}

// loadTemplate checks and decodes an application template. inline says it is
// .release.yaml itself, where environment_variables may be given.
func (l *loader) loadTemplate(doc *Document, inline bool) error {
	l.cfg.TemplateFile = doc.file
	for k, v := range doc.index {
		l.cfg.positions[k] = v
	}
	if doc.root == nil {
		l.add(Finding{Position: Position{File: doc.file}, Severity: SeverityError, Message: "the application template is empty"})
		return nil
	}
	schemaFindings := validateSchema(doc, templateSchema(), "", l.opts.Strict)
	if !inline {
		schemaFindings = dropField(schemaFindings, envPrefix, doc, l.opts.Strict)
	}
	l.add(schemaFindings...)
	l.add(acceptedKeyWarnings(doc, "", acceptedTopLevel)...)
	if doc.value == nil {
		return nil
	}
	if err := doc.root.Decode(l.cfg.Template); err != nil {
		l.add(dedupe(doc.decodeErrorFindings(err, ""), l.findings)...)
	}
	if !inline {
		return nil
	}
	return l.inlineEnvVars(doc)
}

// dropField replaces the schema's findings about key at the top of a template
// file (where only the inline form may carry it) by one unknown-key finding.
func dropField(in Findings, key string, doc *Document, strict bool) Findings {
	var out Findings
	for _, f := range in {
		if f.Field == key || strings.HasPrefix(f.Field, key+".") || strings.HasPrefix(f.Field, key+"[") {
			continue
		}
		out = append(out, f)
	}
	if _, ok := doc.index[key]; ok {
		out = append(out, unknownKey(doc, key, strict,
			"environment_variables belongs in .release.yaml (pointer or inline form), not in a template file; ignored"))
	}
	return out
}

// inlineEnvVars reads the inline form's environment_variables: a path or the document itself.
func (l *loader) inlineEnvVars(doc *Document) error {
	n := mappingValue(doc.root, envPrefix)
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		target, ok := l.resolve(doc, envPrefix, n.Value)
		if !ok {
			return nil
		}
		return l.envVarsFile(target, doc.index[envPrefix], true)
	}
	// Inline document: the schema already checked it as part of the template.
	l.decodeEnvVars(doc, n, "") // the document's paths already start with environment_variables
	return nil
}

// envVarsFile reads an environment-variables file. from is where it was named
// (zero for the default location); required says a missing file is an error.
func (l *loader) envVarsFile(name string, from Position, required bool) error {
	data, found, err := l.read(name)
	if err != nil {
		return err
	}
	if !found {
		if required {
			l.add(Finding{Position: from, Field: envPrefix, Severity: SeverityError,
				Message: fmt.Sprintf("file %s does not exist", name)})
		}
		return nil
	}
	l.cfg.EnvVarsFile = name
	doc, parsed := parseDocument(name, data)
	l.add(parsed...)
	if doc == nil || doc.root == nil {
		return nil
	}
	for k, v := range doc.index {
		l.cfg.positions[joinField(envPrefix, k)] = v
	}
	l.add(validateSchema(doc, envVarsSchema(), "", l.opts.Strict)...)
	l.decodeEnvVars(doc, doc.root, "")
	return nil
}

func (l *loader) decodeEnvVars(doc *Document, n *yaml.Node, prefix string) {
	if doc.value == nil {
		return
	}
	if err := n.Decode(l.cfg.EnvVars); err != nil {
		l.add(dedupe(doc.decodeErrorFindings(err, prefix), l.findings)...)
	}
}

// composeFile derives the template and env vars from a docker-compose file.
func (l *loader) composeFile(doc *Document, p string) error {
	target, ok := l.resolve(doc, "compose", p)
	if !ok {
		return nil
	}
	l.cfg.TemplateFile = target
	data, found, err := l.read(target)
	if err != nil {
		return err
	}
	if !found {
		l.add(doc.error("compose", fmt.Sprintf("file %s does not exist", target)))
		return nil
	}
	res, converted := FromCompose(l.fsys, target, data)
	l.add(converted...)
	if res == nil {
		return nil
	}
	l.cfg.Template = res.Template
	l.cfg.EnvVars = res.EnvVars
	for k, v := range res.positions {
		l.cfg.positions[k] = v
	}
	return nil
}

// mappingValue returns the value of key in a mapping node, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// dedupe drops decode findings at a line that already has an error: the JSON
// Schema says the same thing better.
func dedupe(in, have Findings) Findings {
	lines := map[string]bool{}
	for _, f := range have {
		if f.Severity == SeverityError {
			lines[fmt.Sprintf("%s:%d", f.File, f.Line)] = true
		}
	}
	var out Findings
	for _, f := range in {
		if !lines[fmt.Sprintf("%s:%d", f.File, f.Line)] {
			out = append(out, f)
		}
	}
	return out
}

func (d *Document) at(field string) Position {
	if p, ok := d.index[field]; ok {
		return p
	}
	return Position{File: d.file}
}

func (d *Document) error(field, msg string) Finding {
	return Finding{Position: d.at(field), Field: field, Severity: SeverityError, Message: msg}
}

func (d *Document) warning(field, msg string) Finding {
	return Finding{Position: d.at(field), Field: field, Severity: SeverityWarning, Message: msg}
}
