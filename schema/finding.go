package schema

import (
	"fmt"
	"sort"
)

// Severity says whether a finding makes the configuration invalid.
type Severity string

// Severities, from least to most serious.
const (
	SeverityWarning Severity = "warning"
	SeverityError   Severity = "error"
)

// Position is a place in a file, 1-based. Line 0 means the file as a whole.
type Position struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// String formats the position as FILE:LINE:COL, dropping the parts that are
// unknown. The file name is quoted with SafeText.
func (p Position) String() string {
	file := SafeText(p.File)
	switch {
	case p.Line == 0:
		return file
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", file, p.Line)
	default:
		return fmt.Sprintf("%s:%d:%d", file, p.Line, p.Column)
	}
}

// Finding is one problem found in a configuration.
// Field is the dotted path of the key, e.g. services[2].ports[0].port.
type Finding struct {
	Position
	Field    string   `json:"field,omitempty"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// String formats the finding as FILE:LINE:COL: field: message, on one line:
// every part is quoted with SafeText, since keys, values and file names come
// from the branch.
func (f Finding) String() string {
	if f.Field == "" {
		return fmt.Sprintf("%s: %s: %s", f.Position, f.Severity, SafeText(f.Message))
	}
	return fmt.Sprintf("%s: %s: %s: %s", f.Position, f.Severity, SafeText(f.Field), SafeText(f.Message))
}

// Findings is a list of findings.
type Findings []Finding

// HasErrors reports whether any finding is an error.
func (fs Findings) HasErrors() bool {
	for _, f := range fs {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Errors returns only the error findings.
func (fs Findings) Errors() Findings {
	var out Findings
	for _, f := range fs {
		if f.Severity == SeverityError {
			out = append(out, f)
		}
	}
	return out
}

// Sort orders findings by file, line, column and message, so output is stable.
func (fs Findings) Sort() {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Message < b.Message
	})
}

// Error makes an error out of findings, for callers that only need to stop.
func (fs Findings) Error() string {
	if len(fs) == 0 {
		return "no findings"
	}
	s := fs[0].String()
	if n := len(fs) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more)", n)
	}
	return s
}
