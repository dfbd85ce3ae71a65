package images

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// MaxDockerfileSize bounds the Dockerfile arbor reads and sends.
const MaxDockerfileSize = 1 << 20

// reservedArgPrefix marks build arguments that steer BuildKit's Dockerfile
// frontend itself (BUILDKIT_SYNTAX swaps the frontend for an image, others
// change cache or context handling); a branch may not set them.
const reservedArgPrefix = "BUILDKIT_"

// checkDockerfile reads a Dockerfile with BuildKit's own parser and refuses
// what would let a branch reach outside its build: a `# syntax=` frontend (an
// image BuildKit would pull and run), base images from registries not in
// allowed (FROM, COPY --from, RUN --mount from=), URL and git sources in ADD,
// and RUN steps asking for the host network or insecure privileges. file names
// the Dockerfile in errors (FILE:LINE: ...). args and target are the build's,
// because a FROM may name its image through a global ARG.
func checkDockerfile(file string, dt []byte, args map[string]string, target string, allowed allowList) error {
	if len(dt) > MaxDockerfileSize {
		return fmt.Errorf("%s: %d bytes, more than the %d a Dockerfile may have", file, len(dt), MaxDockerfileSize)
	}
	var errs []error
	for _, k := range sortedKeys(args) {
		if strings.HasPrefix(strings.ToUpper(k), reservedArgPrefix) {
			errs = append(errs, fmt.Errorf("%s: build arg %s: args starting with %s steer BuildKit itself and are refused", file, k, reservedArgPrefix))
		}
	}
	if syntax, _, loc, ok := parser.DetectSyntax(dt); ok {
		errs = append(errs, fmt.Errorf("%s:%d: syntax directive %q: a frontend image is pulled and run by BuildKit; arbor builds with the built-in Dockerfile frontend only", file, line(loc), syntax))
	}
	res, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("%s: %w", file, err))...)
	}
	c := &dfChecker{file: file, allowed: allowed, args: args, lex: shell.NewLex(res.EscapeToken), stages: map[string]bool{}}
	for _, n := range res.AST.Children {
		c.node(n)
	}
	if target != "" && !c.stages[strings.ToLower(target)] {
		c.errs = append(c.errs, fmt.Errorf("%s: target %q: no stage of that name", file, target))
	}
	return errors.Join(append(errs, c.errs...)...)
}

// dfChecker walks one Dockerfile's instructions in order.
type dfChecker struct {
	file    string
	allowed allowList
	args    map[string]string
	lex     *shell.Lex
	meta    []string // global ARGs (before the first FROM), as KEY=VALUE, build args applied
	stages  map[string]bool
	nstages int
	errs    []error
}

func (c *dfChecker) errorf(n *parser.Node, format string, a ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s:%d: %s", c.file, n.StartLine, fmt.Sprintf(format, a...)))
}

func (c *dfChecker) node(n *parser.Node) {
	inst, err := instructions.ParseInstruction(n)
	if err != nil {
		c.errorf(n, "%s", unlocated(err))
		return
	}
	switch in := inst.(type) {
	case *instructions.ArgCommand:
		if c.nstages == 0 {
			c.metaArg(in)
		}
	case *instructions.Stage:
		c.from(n, in)
	case *instructions.CopyCommand:
		if in.From != "" {
			c.image(n, "COPY --from", in.From)
		}
	case *instructions.AddCommand:
		for _, src := range in.SourcePaths {
			if remoteSource(src) {
				c.errorf(n, "ADD %s: URL and git sources are refused: a build reaches no network; put the file in the repository", src)
			}
		}
	case *instructions.RunCommand:
		c.run(n, in)
	}
}

// metaArg records a global ARG: its default, or the build arg of that name.
func (c *dfChecker) metaArg(in *instructions.ArgCommand) {
	for _, kv := range in.Args {
		v, set := c.args[kv.Key]
		if !set && kv.Value != nil {
			v, _, _ = c.lex.ProcessWord(*kv.Value, shell.EnvsFromSlice(c.meta))
		}
		c.meta = append(c.meta, kv.Key+"="+v)
	}
}

func (c *dfChecker) from(n *parser.Node, st *instructions.Stage) {
	c.image(n, "FROM", st.BaseName)
	c.nstages++
	if st.Name != "" {
		c.stages[strings.ToLower(st.Name)] = true
	}
}

// image checks a reference to a base image: a stage name or index, scratch,
// or an image from an allowed registry. Global ARGs are expanded first, as
// BuildKit does.
func (c *dfChecker) image(n *parser.Node, what, raw string) {
	ref, _, err := c.lex.ProcessWord(raw, shell.EnvsFromSlice(c.meta))
	if err != nil {
		c.errorf(n, "%s %s: %v", what, raw, err)
		return
	}
	if ref == "scratch" || c.stages[strings.ToLower(ref)] {
		return
	}
	if i, err := strconv.Atoi(ref); err == nil && i >= 0 && i < c.nstages {
		return
	}
	parsed, err := name.ParseReference(ref)
	if err != nil {
		c.errorf(n, "%s %s: not an image reference or earlier stage: %v", what, raw, err)
		return
	}
	if !c.allowed.allows(parsed) {
		c.errorf(n, "%s %s: base images may only come from %s (images: allowed_base_registries in the daemon config)", what, ref, c.allowed)
	}
}

func (c *dfChecker) run(n *parser.Node, in *instructions.RunCommand) {
	for _, m := range instructions.GetMounts(in) {
		if m.From != "" {
			c.image(n, "RUN --mount from=", m.From)
		}
	}
	if nw := instructions.GetNetwork(in); nw != instructions.NetworkDefault && nw != instructions.NetworkNone {
		c.errorf(n, "RUN --network=%s: build steps have no network", nw)
	}
	if instructions.GetSecurity(in) == instructions.SecurityInsecure {
		c.errorf(n, "RUN --security=insecure: build steps run confined")
	}
}

// remoteSource reports whether an ADD source is fetched from the network
// rather than the context: a URL of any scheme, or a git address.
func remoteSource(src string) bool {
	return strings.Contains(src, "://") || strings.HasPrefix(src, "git@")
}

// line is the first line of a parser location, or 1.
func line(loc []parser.Range) int {
	if len(loc) == 0 {
		return 1
	}
	return loc[0].Start.Line
}

// unlocated is err's message without the location BuildKit's parser puts in
// front of it (the caller prints FILE:LINE itself).
func unlocated(err error) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "dockerfile parse error on line "); ok {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			return after
		}
	}
	return msg
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
