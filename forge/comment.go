package forge

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Description returns s as one line of at most max characters (runes), cut
// with "…": commit status descriptions are short (GitHub takes 140).
func Description(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// MaxCommentBytes bounds a comment RenderComment writes, under the smallest
// limit of the three forges (GitHub: 65536 characters).
const MaxCommentBytes = 60000

// Comment is what a pull request comment says about one app's environment.
type Comment struct {
	App         string
	Environment string    // the environment's name (its namespace)
	Phase       string    // e.g. Ready, Deploying, Failed, Deleted
	Reason      string    // one line on why, for a failure; may be ""
	URLs        []string  // every hostname, primary first
	Commit      string    // the commit the environment runs
	Expires     time.Time // zero: never
	Gone        bool      // the environment was deleted (the pull request closed)
	// Since is when the phase began, for phases that last (Paused, waiting
	// for a slot); zero: not shown.
	Since time.Time
	// WakeURL and ResumeCommand say how to wake a paused environment: a
	// request to WakeURL ("" when a request does not wake it), or the
	// command (e.g. arbor env resume shop feature-x). Both "": not paused.
	WakeURL       string
	ResumeCommand string
	// Diff is the manifest diff against the base environment, in unified
	// form. Callers MUST pass a diff whose Secret values are masked (apply's
	// diffs are); RedactSecret masks a raw Secret object.
	Diff string
	// DiffBase names what the diff is against, e.g. the tracking branch.
	DiffBase string
}

// RenderComment returns the comment's Markdown: a heading, the URLs, phase
// and commit, and the diff folded in a <details> block. The whole stays under
// MaxCommentBytes: a longer diff is cut at a line with a note of what was
// left out. The app's marker (the first line UpsertComment adds) is not part
// of it.
func RenderComment(c Comment) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### arbor: %s", inline(c.App))
	if c.Environment != "" {
		fmt.Fprintf(&b, " · environment `%s`", inline(c.Environment))
	}
	b.WriteString("\n\n")
	if c.Gone {
		b.WriteString("The pull request is closed: its environment is deleted.\n")
		if c.Commit != "" {
			fmt.Fprintf(&b, "\nIt last ran commit `%s`.\n", inline(c.Commit))
		}
		return b.String()
	}
	fmt.Fprintf(&b, "| | |\n|---|---|\n| **Phase** | %s |\n", cell(c.Phase))
	if c.Reason != "" {
		fmt.Fprintf(&b, "| **Reason** | %s |\n", cell(c.Reason))
	}
	if !c.Since.IsZero() {
		fmt.Fprintf(&b, "| **Since** | %s |\n", c.Since.UTC().Format(time.RFC3339))
	}
	if w := wakeCell(c.WakeURL, c.ResumeCommand); w != "" {
		fmt.Fprintf(&b, "| **Wake** | %s |\n", w)
	}
	for i, u := range c.URLs {
		name := "URL"
		if i > 0 {
			name = ""
		}
		fmt.Fprintf(&b, "| **%s** | %s |\n", name, cell(u))
	}
	if c.Commit != "" {
		fmt.Fprintf(&b, "| **Commit** | `%s` |\n", inline(c.Commit))
	}
	if !c.Expires.IsZero() {
		fmt.Fprintf(&b, "| **Expires** | %s |\n", c.Expires.UTC().Format(time.RFC3339))
	}
	b.WriteString(diffBlock(c.Diff, c.DiffBase, MaxCommentBytes-b.Len()))
	return b.String()
}

// wakeCell says how to wake a paused environment, as a table cell.
func wakeCell(url, command string) string {
	var parts []string
	if url != "" {
		parts = append(parts, "open "+cell(url)+" (the first request wakes it)")
	}
	if command != "" {
		// a code span: no HTML in it, and inline leaves no backtick to close it
		parts = append(parts, "run `"+strings.ReplaceAll(inline(command), "|", `\|`)+"`")
	}
	return strings.Join(parts, ", or ")
}

// diffBlock folds the diff into <details>, cut to fit room bytes.
func diffBlock(diff, base string, room int) string {
	what := "the manifest diff"
	if base != "" {
		what += " against " + inline(base)
	}
	if strings.TrimSpace(diff) == "" {
		return "\nNo change in Kubernetes objects against " + orDefault(inline(base), "the base") + ".\n"
	}
	if !strings.HasSuffix(diff, "\n") {
		diff += "\n"
	}
	fence := fenceFor(diff)
	head := fmt.Sprintf("\n<details><summary>%s (%d lines)</summary>\n\n%sdiff\n", capitalize(what), strings.Count(diff, "\n"), fence)
	tail := fence + "\n</details>\n"
	const noteRoom = 120 // room kept for the note on a cut diff
	budget := room - len(head) - len(tail) - noteRoom
	shown, cut := cutLines(diff, budget)
	note := ""
	if cut > 0 {
		note = fmt.Sprintf("\n_The diff is cut: %d more lines are not shown._\n", cut)
	}
	return head + shown + tail + note
}

// cutLines returns the whole lines of s that fit in max bytes, and how many
// lines were left out.
func cutLines(s string, max int) (string, int) {
	if len(s) <= max {
		return s, 0
	}
	if max < 0 {
		max = 0
	}
	i := strings.LastIndexByte(s[:max], '\n')
	if i < 0 {
		return "", strings.Count(s, "\n")
	}
	return s[:i+1], strings.Count(s[i+1:], "\n")
}

// fenceFor returns a code fence longer than any run of backticks in s, so
// the diff cannot close its block and inject Markdown or HTML.
func fenceFor(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// inline makes s safe inside a code span or a line: one line, no backticks.
func inline(s string) string {
	return strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(s)
}

// cell makes s safe in a table cell: one line, pipes and angle brackets escaped.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "\n", " ", "\r", " ").Replace(s)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// RedactSecret masks every value under data and stringData of obj when obj
// is a core/v1 Secret, in place, and reports whether it did. Keys stay, so a
// diff still shows which entries changed (apply's diffs go further and show
// whether a value changed).
func RedactSecret(obj map[string]any) bool {
	if obj == nil || obj["kind"] != "Secret" || obj["apiVersion"] != "v1" {
		return false
	}
	for _, field := range []string{"data", "stringData"} {
		m, ok := obj[field].(map[string]any)
		if !ok {
			if obj[field] != nil {
				obj[field] = "(masked)"
			}
			continue
		}
		for k := range m {
			m[k] = "(masked)"
		}
	}
	return true
}
