package schema

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// JSONSchema is release.schema.json: the JSON Schema (draft 2020-12) of the
// application template, with the environment-variables document under
// $defs/environmentVariables. It is published for editors (docs/configuration.md).
//
//go:embed release.schema.json
var JSONSchema []byte

const schemaURL = "https://arbor.dev/schema/release.schema.json"

// schemas are the compiled parts of release.schema.json.
type schemas struct {
	template, envVars, pointr *jsonschema.Schema
}

var compiled struct {
	once sync.Once
	schemas
}

// compileSchemas compiles doc (checking it against the 2020-12 meta-schema)
// and its template, environment-variables and pointer parts.
func compileSchemas(doc []byte) (schemas, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return schemas{}, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, v); err != nil {
		return schemas{}, err
	}
	var out schemas
	for _, part := range []struct {
		ref string
		to  **jsonschema.Schema
	}{{"", &out.template}, {"#/$defs/environmentVariables", &out.envVars}, {"#/$defs/pointer", &out.pointr}} {
		if *part.to, err = c.Compile(schemaURL + part.ref); err != nil {
			return schemas{}, err
		}
	}
	return out, nil
}

// embedded returns the compiled embedded schema; it is tested
// (TestJSONSchemaIsValid), so a failure here is a build defect.
func embedded() schemas {
	compiled.once.Do(func() {
		s, err := compileSchemas(JSONSchema)
		if err != nil {
			panic(fmt.Sprintf("schema: embedded release.schema.json: %v", err))
		}
		compiled.schemas = s
	})
	return compiled.schemas
}

func templateSchema() *jsonschema.Schema { return embedded().template }
func envVarsSchema() *jsonschema.Schema  { return embedded().envVars }
func pointerSchema() *jsonschema.Schema  { return embedded().pointr }

var printer = message.NewPrinter(language.English)

// validateSchema applies sch to the document and places each error at the
// field its instance location names. Unknown keys are warnings, or errors
// when strict.
func validateSchema(doc *Document, sch *jsonschema.Schema, prefix string, strict bool) Findings {
	if doc.value == nil && doc.root != nil {
		return nil // too large to convert; already a finding
	}
	err := sch.Validate(doc.value)
	var ve *jsonschema.ValidationError
	if err == nil || !errors.As(err, &ve) {
		return nil
	}
	var out Findings
	seen := map[string]bool{}
	for _, leaf := range leaves(ve, nil) {
		field := fieldPath(doc.value, leaf.InstanceLocation)
		var found Findings
		switch k := leaf.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			for _, p := range k.Properties {
				found = append(found, unknownKey(doc, joinField(field, p), strict, ""))
			}
		case *kind.Required:
			found = append(found, doc.error(field, "missing "+quoteList(k.Missing)))
		case *kind.Type:
			found = append(found, doc.error(field, fmt.Sprintf("expected %s, found %s", typeList(k.Want), typeWord(k.Got))))
		case *kind.MinLength:
			msg := fmt.Sprintf("must be at least %d characters long", k.Want)
			if k.Want == 1 {
				msg = "must not be empty"
			}
			found = append(found, doc.error(field, msg))
		case *kind.Pattern:
			// The only pattern in the schema is the one for numbers written as strings.
			found = append(found, doc.error(field, fmt.Sprintf("%q is not a whole number", k.Got)))
		case *kind.Enum:
			found = append(found, doc.error(field, fmt.Sprintf("%v is not one of %s", k.Got, enumList(k.Want))))
		default:
			found = append(found, doc.error(field, leaf.ErrorKind.LocalizedString(printer)))
		}
		for _, f := range found {
			f.Field = joinField(prefix, f.Field)
			key := f.Field + "\x00" + f.Message
			if !seen[key] {
				seen[key] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// leaves returns the errors that have no causes: the specific problems.
func leaves(e *jsonschema.ValidationError, acc []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return append(acc, e)
	}
	for _, c := range e.Causes {
		acc = leaves(c, acc)
	}
	return acc
}

// unknownKey reports a key arbor does not know.
func unknownKey(doc *Document, field string, strict bool, msg string) Finding {
	if msg == "" {
		msg = fmt.Sprintf("unknown key %q", lastKey(field))
	}
	f := doc.warning(field, msg)
	if strict {
		f.Severity = SeverityError
	}
	return f
}

// fieldPath turns a JSON pointer's tokens into a dotted field path, writing
// list indexes as [i].
func fieldPath(v any, tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		switch x := v.(type) {
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(x) {
				return b.String()
			}
			fmt.Fprintf(&b, "[%d]", i)
			v = x[i]
		case map[string]any:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(t)
			v = x[t]
		default:
			return b.String()
		}
	}
	return b.String()
}

func lastKey(field string) string {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		return field[i+1:]
	}
	return field
}

func quoteList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = strconv.Quote(k)
	}
	sort.Strings(q)
	if len(q) == 1 {
		return "key " + q[0]
	}
	return "keys " + strings.Join(q, ", ")
}

func typeWord(t string) string {
	switch t {
	case "object":
		return "a mapping"
	case "array":
		return "a list"
	case "null":
		return "nothing"
	case "integer":
		return "an integer"
	default:
		return "a " + t
	}
}

// typeList reads a list of JSON types in the words a YAML user knows.
func typeList(types []string) string {
	order := map[string]int{"object": 0, "array": 1, "string": 2, "integer": 3, "number": 4, "boolean": 5, "null": 6}
	sorted := append([]string{}, types...)
	sort.Slice(sorted, func(i, j int) bool { return order[sorted[i]] < order[sorted[j]] })
	words := make([]string, len(sorted))
	for i, t := range sorted {
		words[i] = typeWord(t)
	}
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

func enumList(values []any) string {
	words := make([]string, len(values))
	for i, v := range values {
		words[i] = fmt.Sprint(v)
	}
	return strings.Join(words, ", ")
}
