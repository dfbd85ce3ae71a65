package schema

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
)

// Build is one entry of the top-level `builds:`: how the image of the
// service of the same name is built from the repository.
type Build struct {
	Name       string            `yaml:"name,omitempty" json:"name,omitempty"`
	Context    string            `yaml:"context,omitempty" json:"context,omitempty"`
	Dockerfile string            `yaml:"dockerfile,omitempty" json:"dockerfile,omitempty"`
	Args       map[string]Scalar `yaml:"args,omitempty" json:"args,omitempty"`
	Target     string            `yaml:"target,omitempty" json:"target,omitempty"`
	// RepoURL names another repository to build from: accepted, not built
	// (a branch must not make arbor fetch an arbitrary URL).
	RepoURL string `yaml:"repo_url,omitempty" json:"repo_url,omitempty"`
}

// BuildSpec is how one service's image is built: the context directory in
// the repository, the Dockerfile relative to it, the build args and target.
type BuildSpec struct {
	Context    string
	Dockerfile string
	Args       map[string]string
	Target     string
}

// DefaultDockerfile is a build's Dockerfile when none is named.
const DefaultDockerfile = "Dockerfile"

// BuildOf returns how service s's image is built, and false when it is not
// built from the repository. A service is built when it has `build:` (a
// context directory, or the keys context, dockerfile, args, target), or
// `has_repo: true`; the top-level `builds:` entry of the same name fills
// what the service leaves out; with neither, the repository's root and its
// Dockerfile.
func (t *Template) BuildOf(s *Service) (BuildSpec, bool) {
	if !s.HasRepo && s.Build == nil {
		return BuildSpec{}, false
	}
	spec := BuildSpec{}
	for _, b := range t.Builds {
		if b.Name == s.Name && b.RepoURL == "" {
			spec = BuildSpec{Context: b.Context, Dockerfile: b.Dockerfile, Target: b.Target, Args: scalars(b.Args)}
			break
		}
	}
	switch b := s.Build.(type) {
	case string:
		spec.Context = b
	case map[string]any:
		if v, ok := b["context"].(string); ok {
			spec.Context = v
		}
		if v, ok := b["dockerfile"].(string); ok {
			spec.Dockerfile = v
		}
		if v, ok := b["target"].(string); ok {
			spec.Target = v
		}
		if args := buildArgs(b["args"]); args != nil {
			spec.Args = args
		}
	}
	spec.Context = cleanContext(spec.Context)
	if spec.Dockerfile == "" {
		spec.Dockerfile = DefaultDockerfile
	}
	return spec, true
}

// cleanContext is a context directory relative to the repository's root:
// "." for the root ("./vote" is "vote").
func cleanContext(dir string) string {
	dir = strings.TrimSpace(dir)
	if dir == "" {
		return "."
	}
	return path.Clean(strings.TrimPrefix(dir, "/"))
}

func scalars(m map[string]Scalar) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// buildArgs reads `args` of a build: a map of scalars, or a list of
// KEY=VALUE strings as docker-compose writes them.
func buildArgs(v any) map[string]string {
	out := map[string]string{}
	switch a := v.(type) {
	case map[string]any:
		for k, e := range a {
			if e == nil {
				out[k] = ""
				continue
			}
			out[k] = fmt.Sprint(e)
		}
	case []any:
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				continue
			}
			k, val, _ := strings.Cut(s, "=")
			out[k] = val
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkBuilds reports build settings arbor cannot act on: a context that
// leaves the repository, a Dockerfile outside its context, a `builds:` entry
// without a service of its name, or one from another repository.
func (c *checker) checkBuilds(t *Template) {
	services := map[string]bool{} // name → built from the repository
	for i := range t.Services {
		s := &t.Services[i]
		services[s.Name] = s.HasRepo || s.Build != nil
		if spec, ok := t.BuildOf(s); ok {
			c.buildPaths(fmt.Sprintf("services[%d].build", i), spec)
		}
	}
	for i, b := range t.Builds {
		f := fmt.Sprintf("builds[%d]", i)
		switch {
		case b.Name == "":
			c.warnf(f, "a build without a name is not used: builds apply to the service of the same name")
		case b.RepoURL != "":
			c.warnf(f+".repo_url", "builds from another repository are not built by arbor; set the service's image to what that repository's CI pushes")
		default:
			built, ok := services[b.Name]
			if !ok {
				c.warnf(f+".name", "no service is named %q: the image is not built (builds apply to the service of the same name)", b.Name)
			} else if !built {
				c.warnf(f+".name", "service %q is not built from the repository: give it has_repo: true to use this build", b.Name)
			}
		}
	}
}

func (c *checker) buildPaths(f string, spec BuildSpec) {
	if spec.Context == ".." || strings.HasPrefix(spec.Context, "../") {
		c.errorf(f+".context", "build context %q is outside the repository", spec.Context)
	}
	df := path.Clean(spec.Dockerfile)
	if path.IsAbs(spec.Dockerfile) || df == ".." || strings.HasPrefix(df, "../") {
		c.errorf(f+".dockerfile", "dockerfile %q must be a path inside the build context", spec.Dockerfile)
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Args)) {
		if strings.HasPrefix(strings.ToUpper(k), "BUILDKIT_") {
			c.errorf(f+".args."+k, "build args starting with BUILDKIT_ steer BuildKit itself and are refused")
		}
	}
}
