package schema

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Chart is one Helm chart of the template (docs/charts.md), in Release's
// spelling. A chart lives in the repository (Directory), in an HTTP chart
// repository (RepoURL + Install "ALIAS/CHART", Add the alias) or in an OCI
// registry (an oci:// RepoURL or Install). For a remote chart, Directory is
// where its values files are.
type Chart struct {
	Name         string `yaml:"name" json:"name"`
	Directory    string `yaml:"directory,omitempty" json:"directory,omitempty"`
	RepoURL      string `yaml:"repo_url,omitempty" json:"repo_url,omitempty"`
	Add          string `yaml:"add,omitempty" json:"add,omitempty"`
	Install      string `yaml:"install,omitempty" json:"install,omitempty"`
	Version      Scalar `yaml:"version,omitempty" json:"version,omitempty"`
	Values       Paths  `yaml:"values,omitempty" json:"values,omitempty"`
	NameTemplate string `yaml:"name_template,omitempty" json:"name_template,omitempty"`
	IncludeCRDs  bool   `yaml:"include_crds,omitempty" json:"include_crds,omitempty"`
}

// HelmDefaults is the top-level helm: key.
type HelmDefaults struct {
	NameTemplate string `yaml:"name_template,omitempty" json:"name_template,omitempty"`
}

// Paths is one path or a list of them (values: a.yaml, or values: [a.yaml, b.yaml]).
type Paths []string

// UnmarshalYAML reads a string or a list of strings.
func (p *Paths) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*p = Paths{s}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*p = list
	return nil
}

// ChartSourceKind says where a chart comes from.
type ChartSourceKind int

// The kinds of chart source.
const (
	ChartLocal ChartSourceKind = iota // a directory of the repository
	ChartHTTP                         // an HTTP chart repository (index.yaml)
	ChartOCI                          // an OCI registry
	ChartGit                          // another git repository: not supported
)

// ChartSource is where a chart comes from, as the daemon fetches it.
type ChartSource struct {
	Kind ChartSourceKind
	// Repo is the chart repository's URL (ChartHTTP) or the oci:// reference
	// of the chart without its version (ChartOCI).
	Repo  string
	Chart string // the chart's name in the repository
	// Version is the version asked for; "" is the newest.
	Version string
}

// Source says where c comes from, or why that cannot be told.
func (c *Chart) Source() (ChartSource, error) {
	repo, install := strings.TrimSpace(c.RepoURL), strings.TrimSpace(c.Install)
	version := strings.TrimSpace(string(c.Version))
	switch {
	case strings.HasPrefix(install, "oci://"):
		ref := strings.TrimSuffix(install, "/")
		return ChartSource{Kind: ChartOCI, Repo: ref, Chart: path.Base(ref), Version: version}, ociRefError(ref)
	case strings.HasPrefix(repo, "oci://"):
		name := chartOf(install, c.Add)
		if name == "" {
			name = c.Name
		}
		ref := strings.TrimSuffix(repo, "/") + "/" + name
		return ChartSource{Kind: ChartOCI, Repo: ref, Chart: name, Version: version}, ociRefError(ref)
	case repo == "":
		if install != "" {
			return ChartSource{}, fmt.Errorf("install %q needs repo_url (or an oci:// reference)", install)
		}
		return ChartSource{Kind: ChartLocal}, nil
	case strings.HasSuffix(repo, ".git") || strings.HasPrefix(repo, "git@"):
		return ChartSource{Kind: ChartGit, Repo: repo}, nil
	case strings.HasPrefix(repo, "https://") || strings.HasPrefix(repo, "http://"):
		if install == "" {
			return ChartSource{Kind: ChartGit, Repo: repo}, nil
		}
		name := chartOf(install, c.Add)
		if name == "" {
			return ChartSource{}, fmt.Errorf("install %q: want ALIAS/CHART (the alias of add) or CHART", install)
		}
		return ChartSource{Kind: ChartHTTP, Repo: strings.TrimSuffix(repo, "/"), Chart: name, Version: version}, nil
	}
	return ChartSource{}, fmt.Errorf("repo_url %q: want an https:// chart repository or an oci:// registry", repo)
}

// chartOf is the chart name of install: "alias/chart" (alias as in add) or "chart".
func chartOf(install, add string) string {
	alias, name, ok := strings.Cut(install, "/")
	if !ok {
		name, alias = install, ""
	}
	if alias != "" && add != "" && alias != add {
		return ""
	}
	if name == "" || strings.Contains(name, "/") {
		return ""
	}
	return name
}

var ociRefRE = regexp.MustCompile(`^oci://[A-Za-z0-9.\-]+(:[0-9]+)?(/[a-z0-9]+([._\-][a-z0-9]+)*)+$`)

func ociRefError(ref string) error {
	if !ociRefRE.MatchString(ref) {
		return fmt.Errorf("%q is not an oci:// reference (oci://HOST/PATH/CHART)", ref)
	}
	return nil
}

// ValuesPaths are the chart's values files as clean repository paths:
// relative to Directory, as Release reads them.
func (c *Chart) ValuesPaths() []string {
	out := make([]string, 0, len(c.Values))
	for _, v := range c.Values {
		out = append(out, path.Join(c.Directory, v))
	}
	return out
}

// ReleaseName is the Helm release name of c (.Release.Name in its
// templates): its name_template, else helm.name_template, else app.
func (t *Template) ReleaseName(c *Chart, app string) string {
	switch {
	case c.NameTemplate != "":
		return c.NameTemplate
	case t.Helm != nil && t.Helm.NameTemplate != "":
		return t.Helm.NameTemplate
	}
	return app
}

// --- checks ---

// charts checks the charts: names, sources, values files, release names.
func (c *checker) charts() {
	t := c.cfg.Template
	names := namesOf(t.Charts, func(ch Chart) string { return ch.Name })
	c.unique("charts", "chart", names)
	for i := range t.Charts {
		c.chart(fmt.Sprintf("charts[%d]", i), &t.Charts[i])
	}
	if t.Helm != nil {
		c.releaseName("helm.name_template", t.Helm.NameTemplate)
	}
}

func (c *checker) chart(f string, ch *Chart) {
	c.dnsLabel(f+".name", "chart", ch.Name)
	src, err := ch.Source()
	switch {
	case err != nil:
		c.errorf(f, "%v", err)
		return
	case src.Kind == ChartGit:
		c.warnf(f+".repo_url", "charts from a git repository (%s) are not supported by arbor: the chart is skipped; vendor it into this repository and use directory", ch.RepoURL)
		return
	case src.Kind == ChartLocal:
		c.localChart(f, ch)
	default:
		if ch.Directory != "" {
			c.repoPath(f+".directory", ch.Directory, true)
		}
		if src.Version == "" {
			c.warnf(f+".version", "no version: the daemon takes the newest version of %s each time it renders; pin one so environments do not change under you", src.Chart)
		}
	}
	for i, p := range ch.ValuesPaths() {
		c.repoPath(fmt.Sprintf("%s.values[%d]", f, i), p, false)
	}
	c.releaseName(f+".name_template", ch.NameTemplate)
}

// localChart checks that directory is a chart of the repository.
func (c *checker) localChart(f string, ch *Chart) {
	if ch.Directory == "" {
		c.errorf(f, "chart %q needs directory (a chart in the repository), repo_url with install, or an oci:// install", ch.Name)
		return
	}
	n := len(c.out)
	c.repoPath(f+".directory", ch.Directory, true)
	if len(c.out) > n || c.fsys == nil {
		return
	}
	if _, err := fs.Stat(c.fsys, path.Join(path.Clean(strings.TrimPrefix(ch.Directory, "./")), "Chart.yaml")); err != nil {
		c.errorf(f+".directory", "%s has no Chart.yaml: not a Helm chart", ch.Directory)
	}
}

var releaseNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// releaseName checks a name_template: a Helm release name is a DNS label of
// at most 53 characters. One with ${...} is checked at render.
func (c *checker) releaseName(f, name string) {
	if name == "" || strings.Contains(name, "${") {
		return
	}
	if len(name) > 53 || !releaseNameRE.MatchString(name) {
		c.errorf(f, "release name %q must be lower-case letters, digits and '-', at most 53 characters (Helm's rule)", name)
	}
}

// hasChart reports whether the template declares a chart of that name.
func (c *checker) hasChart(name string) bool {
	for _, ch := range c.cfg.Template.Charts {
		if ch.Name == name {
			return true
		}
	}
	return false
}
