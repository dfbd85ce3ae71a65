package schema

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/arbordev/arbor/internal/repofs"
)

// ComposeResult is a template derived from a docker-compose file (docs/release-yaml.md#arbor-init).
type ComposeResult struct {
	Template *Template
	EnvVars  *EnvVars

	positions map[string]Position // template field → where the compose file says it
}

// composeFile is the part of a docker-compose file the conversion reads.
type composeFile struct {
	Services yaml.Node `yaml:"services"`
}

type composeService struct {
	Image       string      `yaml:"image"`
	Build       yaml.Node   `yaml:"build"`
	Command     yaml.Node   `yaml:"command"`
	Entrypoint  yaml.Node   `yaml:"entrypoint"`
	Ports       []yaml.Node `yaml:"ports"`
	Expose      []yaml.Node `yaml:"expose"`
	DependsOn   yaml.Node   `yaml:"depends_on"`
	Healthcheck *struct {
		Test        yaml.Node `yaml:"test"`
		Interval    string    `yaml:"interval"`
		Timeout     string    `yaml:"timeout"`
		Retries     *int      `yaml:"retries"`
		StartPeriod string    `yaml:"start_period"`
		Disable     bool      `yaml:"disable"`
	} `yaml:"healthcheck"`
	Deploy *struct {
		Resources struct {
			Limits struct {
				Memory Scalar `yaml:"memory"`
				CPUs   Scalar `yaml:"cpus"`
			} `yaml:"limits"`
		} `yaml:"resources"`
	} `yaml:"deploy"`
	MemLimit    Scalar      `yaml:"mem_limit"`
	CPUs        Scalar      `yaml:"cpus"`
	Volumes     []yaml.Node `yaml:"volumes"`
	Environment yaml.Node   `yaml:"environment"`
	EnvFile     yaml.Node   `yaml:"env_file"`
}

// converter holds one conversion's state.
type converter struct {
	fsys  fs.FS
	doc   *Document
	res   *ComposeResult
	out   Findings
	names map[string]string // compose service name → DNS-label name
}

// FromCompose derives an application template and environment variables from
// a docker-compose file (docs/release-yaml.md#arbor-init), as arbor init writes them and as a pointer
// form naming only a compose file is read. file is the compose file's path in
// fsys (bind-mounted files are looked up relative to it; fsys may be nil).
// What cannot be converted is a warning; a file that is not a compose file
// with services gives an error and a nil result.
func FromCompose(fsys fs.FS, file string, data []byte) (*ComposeResult, Findings) {
	doc, found := parseDocument(file, data)
	if doc == nil || (doc.root != nil && doc.value == nil) {
		return nil, found // not YAML, or too large once aliases are expanded
	}
	c := &converter{fsys: fsys, doc: doc, out: found, names: map[string]string{},
		res: &ComposeResult{Template: &Template{}, EnvVars: &EnvVars{}, positions: map[string]Position{}}}
	var cf composeFile
	if doc.root != nil {
		if err := doc.root.Decode(&cf); err != nil {
			c.out = append(c.out, doc.decodeErrorFindings(err, "")...)
		}
	}
	svcs := &cf.Services
	if svcs.Kind != yaml.MappingNode || len(svcs.Content) == 0 {
		c.out = append(c.out, doc.error("services", "the compose file has no services"))
		return nil, c.out
	}
	for i := 0; i+1 < len(svcs.Content); i += 2 {
		c.names[svcs.Content[i].Value] = dnsName(svcs.Content[i].Value)
	}
	for i := 0; i+1 < len(svcs.Content); i += 2 {
		c.service(svcs.Content[i].Value, svcs.Content[i+1])
	}
	c.res.Template.EnvironmentTemplates = []EnvironmentTemplate{{Name: "ephemeral"}, {Name: "permanent"}}
	return c.res, c.out
}

func (c *converter) note(field, format string, args ...any) {
	c.out = append(c.out, c.doc.warning(field, fmt.Sprintf(format, args...)))
}

// alias records that a template field is written at a compose field.
func (c *converter) alias(tmplField, composeField string) {
	if p, ok := c.doc.index[composeField]; ok {
		c.res.positions[tmplField] = p
	}
}

func (c *converter) service(name string, n *yaml.Node) {
	cf := "services." + name
	var cs composeService
	if err := n.Decode(&cs); err != nil {
		c.out = append(c.out, c.doc.decodeErrorFindings(err, "")...)
	}
	svc := Service{Name: c.names[name], Image: cs.Image}
	idx := len(c.res.Template.Services)
	tf := fmt.Sprintf("services[%d]", idx)
	c.alias(tf, cf)
	if svc.Name != name {
		c.note(cf, "service %q is named %q: names must be DNS labels", name, svc.Name)
	}
	c.build(&svc, &cs.Build)
	svc.Command = c.words(cf+".entrypoint", &cs.Entrypoint)
	svc.Args = c.words(cf+".command", &cs.Command)
	c.alias(tf+".command", cf+".entrypoint")
	c.alias(tf+".args", cf+".command")
	for j := range cs.Ports {
		c.port(&svc, cf+fmt.Sprintf(".ports[%d]", j), &cs.Ports[j])
	}
	for j := range cs.Expose {
		c.port(&svc, cf+fmt.Sprintf(".expose[%d]", j), &cs.Expose[j])
	}
	for j := range svc.Ports {
		c.alias(fmt.Sprintf("%s.ports[%d]", tf, j), cf+".ports")
	}
	svc.DependsOn = c.dependsOn(cf+".depends_on", &cs.DependsOn)
	c.alias(tf+".depends_on", cf+".depends_on")
	svc.ReadinessProbe = c.healthcheck(cf+".healthcheck", &cs)
	c.alias(tf+".readiness_probe", cf+".healthcheck")
	c.limits(&svc, tf, cf, &cs)
	for j := range cs.Volumes {
		c.volume(&svc, fmt.Sprintf("%s.volumes[%d]", cf, j), &cs.Volumes[j])
	}
	c.alias(tf+".volumes", cf+".volumes")
	c.alias(tf+".configmap", cf+".volumes")
	c.environment(svc.Name, cf, &cs)
	c.res.Template.Services = append(c.res.Template.Services, svc)
}

func (c *converter) build(svc *Service, b *yaml.Node) {
	switch b.Kind {
	case yaml.ScalarNode:
		if b.Value != "" {
			svc.HasRepo = true
			svc.Build = map[string]any{"context": b.Value}
		}
	case yaml.MappingNode:
		var m map[string]any
		if b.Decode(&m) == nil {
			svc.HasRepo = true
			build := map[string]any{}
			for _, k := range []string{"context", "dockerfile", "target"} {
				if v, ok := m[k]; ok {
					build[k] = v
				}
			}
			svc.Build = build
		}
	}
}

// words reads a compose command or entrypoint: a list, or a string split the
// way a shell would split it.
func (c *converter) words(field string, n *yaml.Node) []string {
	switch n.Kind {
	case yaml.SequenceNode:
		var out []string
		if err := n.Decode(&out); err != nil {
			c.note(field, "could not read: %v", err)
		}
		return out
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" || n.Value == "" {
			return nil
		}
		w, err := shellWords(n.Value)
		if err != nil {
			c.note(field, "%v; kept as one /bin/sh -c command", err)
			return []string{"/bin/sh", "-c", n.Value}
		}
		return w
	}
	return nil
}

var portRE = regexp.MustCompile(`^(?:(?:\[[^\]]*\]|\d+\.\d+\.\d+\.\d+):)?(?:(\d+)(?:-\d+)?:)?(\d+)(-\d+)?(?:/(tcp|udp|sctp))?$`)

// port converts "5000:80" (node_port 5000 → 80), "80" and expose entries
// (container_port), and the long form {target, published}.
func (c *converter) port(svc *Service, field string, n *yaml.Node) {
	var published, target string
	switch n.Kind {
	case yaml.MappingNode:
		var long struct {
			Target    Scalar `yaml:"target"`
			Published Scalar `yaml:"published"`
			Protocol  string `yaml:"protocol"`
		}
		if err := n.Decode(&long); err != nil {
			c.note(field, "could not read the port: %v", err)
			return
		}
		published, target = string(long.Published), string(long.Target)
		if long.Protocol == "udp" || long.Protocol == "sctp" {
			c.note(field, "protocol %s is not supported; the port is kept as TCP", long.Protocol)
		}
	case yaml.ScalarNode:
		m := portRE.FindStringSubmatch(strings.TrimSpace(n.Value))
		if m == nil {
			c.note(field, "port %q is not understood; skipped", n.Value)
			return
		}
		published, target = m[1], m[2]
		if m[3] != "" || strings.Contains(n.Value, "-") {
			c.note(field, "port ranges are not supported; only port %s is kept", target)
		}
		if m[4] == "udp" || m[4] == "sctp" {
			c.note(field, "protocol %s is not supported; the port is kept as TCP", m[4])
		}
	default:
		return
	}
	t, err := strconv.Atoi(target)
	if err != nil || t < 1 || t > 65535 {
		c.note(field, "port %q is not a port number; skipped", target)
		return
	}
	if published == "" {
		svc.Ports = append(svc.Ports, Port{Type: "container_port", Port: Int(t)})
		return
	}
	p, err := strconv.Atoi(published)
	if err != nil || p < 1 || p > 65535 {
		c.note(field, "published port %q is not a port number; skipped", published)
		return
	}
	tp := Int(t)
	svc.Ports = append(svc.Ports, Port{Type: "node_port", Port: Int(p), TargetPort: &tp})
}

// dependsOn reads the list form and the map form ({db: {condition: ...}}).
func (c *converter) dependsOn(field string, n *yaml.Node) []string {
	var names []string
	switch n.Kind {
	case yaml.SequenceNode:
		for _, item := range n.Content {
			names = append(names, item.Value)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			names = append(names, n.Content[i].Value)
		}
	}
	var out []string
	for _, name := range names {
		if dns, ok := c.names[name]; ok {
			out = append(out, dns)
		} else {
			c.note(field, "depends on %q, which is not a service of this file; dropped", name)
		}
	}
	return out
}

// healthcheck converts a compose healthcheck into an exec readiness probe.
func (c *converter) healthcheck(field string, cs *composeService) *Probe {
	h := cs.Healthcheck
	if h == nil || h.Disable {
		return nil
	}
	var cmd []string
	switch h.Test.Kind {
	case yaml.SequenceNode:
		var test []string
		if err := h.Test.Decode(&test); err != nil || len(test) == 0 {
			c.note(field+".test", "healthcheck test is not understood; no readiness probe")
			return nil
		}
		switch test[0] {
		case "NONE":
			return nil
		case "CMD":
			cmd = test[1:]
		case "CMD-SHELL":
			cmd = []string{"/bin/sh", "-c", strings.Join(test[1:], " ")}
		default:
			cmd = test
		}
	case yaml.ScalarNode:
		if h.Test.Value == "" {
			return nil
		}
		cmd = []string{"/bin/sh", "-c", h.Test.Value}
	default:
		return nil
	}
	if len(cmd) == 0 {
		return nil
	}
	p := &Probe{Exec: &ExecAction{Command: cmd}}
	p.PeriodSeconds = c.seconds(field+".interval", h.Interval)
	p.TimeoutSeconds = c.seconds(field+".timeout", h.Timeout)
	p.InitialDelaySeconds = c.seconds(field+".start_period", h.StartPeriod)
	if h.Retries != nil && *h.Retries > 0 {
		r := Int(*h.Retries)
		p.FailureThreshold = &r
	}
	return p
}

func (c *converter) seconds(field, d string) *Int {
	if d == "" {
		return nil
	}
	dur, err := time.ParseDuration(d)
	if err != nil {
		c.note(field, "duration %q is not understood; dropped", d)
		return nil
	}
	s := Int((dur + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return &s
}

// limits converts deploy.resources.limits and mem_limit/cpus.
func (c *converter) limits(svc *Service, tf, cf string, cs *composeService) {
	mem, cpus := cs.MemLimit, cs.CPUs
	memField, cpuField := cf+".mem_limit", cf+".cpus"
	if cs.Deploy != nil {
		if m := cs.Deploy.Resources.Limits.Memory; m != "" {
			mem, memField = m, cf+".deploy.resources.limits.memory"
		}
		if m := cs.Deploy.Resources.Limits.CPUs; m != "" {
			cpus, cpuField = m, cf+".deploy.resources.limits.cpus"
		}
	}
	if mem != "" {
		if q, ok := composeBytes(string(mem)); ok {
			svc.Memory = &Quantities{Limits: Scalar(q)} // Kubernetes defaults the request to the limit
			c.alias(tf+".memory", memField)
		} else {
			c.note(memField, "memory %q is not understood; dropped", mem)
		}
	}
	if cpus != "" {
		if _, err := strconv.ParseFloat(string(cpus), 64); err == nil {
			svc.CPU = &Quantities{Limits: cpus}
			c.alias(tf+".cpu", cpuField)
		} else {
			c.note(cpuField, "cpus %q is not understood; dropped", cpus)
		}
	}
}

var composeBytesRE = regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$`)

// composeBytes turns compose's byte sizes (512m, 1g, 1gb, 100000) into a
// Kubernetes quantity. Compose's "m" is mebibytes, where Kubernetes' would be milli.
func composeBytes(s string) (string, bool) {
	m := composeBytesRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return "", false
	}
	suffix := map[string]string{"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi", "t": "Ti"}[m[2]]
	return m[1] + suffix, true
}

// volume converts a compose volume: named volumes become persistent volumes,
// bind-mounted files become configmap entries, tmpfs and anonymous volumes
// become empty_dir volumes. Bind-mounted directories cannot be carried over.
func (c *converter) volume(svc *Service, field string, n *yaml.Node) {
	typ, source, target := c.volumeSpec(field, n)
	if target == "" {
		return
	}
	switch {
	case typ == "tmpfs" || (typ == "volume" && source == ""):
		svc.Volumes = append(svc.Volumes, Volume{Name: c.uniqueVolume(svc, path.Base(target)), Type: "empty_dir", MountPath: target})
	case typ == "volume":
		svc.Volumes = append(svc.Volumes, Volume{Name: c.uniqueVolume(svc, source), Type: "persistent", MountPath: target})
	case typ == "bind":
		c.bind(svc, field, source, target)
	default:
		c.note(field, "volume type %q is not supported; skipped", typ)
	}
}

// volumeSpec reads the short ("src:dst[:mode]") and long forms.
func (c *converter) volumeSpec(field string, n *yaml.Node) (typ, source, target string) {
	if n.Kind == yaml.MappingNode {
		var long struct {
			Type   string `yaml:"type"`
			Source string `yaml:"source"`
			Target string `yaml:"target"`
		}
		if err := n.Decode(&long); err != nil {
			c.note(field, "could not read the volume: %v", err)
			return "", "", ""
		}
		return long.Type, long.Source, long.Target
	}
	parts := strings.Split(n.Value, ":")
	switch {
	case len(parts) == 1:
		return "volume", "", parts[0]
	case len(parts) >= 2:
		source, target = parts[0], parts[1]
	}
	if strings.HasPrefix(source, ".") || strings.HasPrefix(source, "/") || strings.HasPrefix(source, "~") || strings.HasPrefix(source, "$") {
		return "bind", source, target
	}
	return "volume", source, target
}

func (c *converter) bind(svc *Service, field, source, target string) {
	if strings.HasPrefix(source, "/") || strings.HasPrefix(source, "~") || strings.HasPrefix(source, "$") {
		c.note(field, "host path %s cannot be mounted in a cluster; skipped", source)
		return
	}
	repoPath := path.Join(path.Dir(c.doc.file), source)
	if repoPath == ".." || strings.HasPrefix(repoPath, "../") {
		c.note(field, "%s is outside the repository; skipped", source)
		return
	}
	if c.fsys != nil {
		info, err := fs.Stat(c.fsys, repoPath)
		switch {
		case repofs.Refused(err):
			c.note(field, "%s; skipped", pathReason(err))
			return
		case err != nil:
			c.note(field, "%s does not exist in the repository; skipped", repoPath)
			return
		case info.IsDir():
			c.note(field, "bind-mounted directory %s is not mounted: the cluster runs the image as built (list its files as configmap entries if they are configuration)", repoPath)
			return
		}
	}
	name := c.uniqueConfigMap(svc, path.Base(repoPath))
	svc.ConfigMap = append(svc.ConfigMap, ConfigMapFile{Name: name, MountPath: target, RepoPath: repoPath})
}

func (c *converter) uniqueVolume(svc *Service, base string) string {
	taken := map[string]bool{}
	for _, v := range svc.Volumes {
		taken[v.Name] = true
	}
	return uniqueName(dnsName(base), taken)
}

func (c *converter) uniqueConfigMap(svc *Service, base string) string {
	taken := map[string]bool{}
	for _, cm := range svc.ConfigMap {
		taken[cm.Name] = true
	}
	return uniqueName(dnsName(svc.Name+"-"+base), taken)
}

func uniqueName(name string, taken map[string]bool) string {
	if !taken[name] {
		return name
	}
	for i := 2; ; i++ {
		n := fmt.Sprintf("%s-%d", name, i)
		if len(n) > 63 {
			n = fmt.Sprintf("%s-%d", strings.TrimRight(name[:63-len(strconv.Itoa(i))-1], "-"), i)
		}
		if !taken[n] {
			return n
		}
	}
}

// environment moves a service's environment into the env-vars document.
func (c *converter) environment(name, cf string, cs *composeService) {
	if cs.EnvFile.Kind != 0 {
		c.note(cf+".env_file", "env_file is not read: add its variables to the environment-variables file (secret: true for secrets)")
	}
	var vars []EnvVar
	env := &cs.Environment
	switch env.Kind {
	case yaml.SequenceNode:
		for i, item := range env.Content {
			k, v, hasValue := strings.Cut(item.Value, "=")
			vars = append(vars, c.envVar(fmt.Sprintf("%s.environment[%d]", cf, i), k, v, hasValue))
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(env.Content); i += 2 {
			vn := env.Content[i+1]
			hasValue := vn.ShortTag() != "!!null"
			key := env.Content[i].Value
			vars = append(vars, c.envVar(cf+".environment."+key, key, vn.Value, hasValue))
		}
	}
	if len(vars) == 0 {
		return
	}
	if c.res.EnvVars.Services == nil {
		c.res.EnvVars.Services = map[string][]EnvVar{}
	}
	c.res.EnvVars.Services[name] = vars
}

// envVar converts one variable. A name with no value takes its value from the
// host in compose; in arbor it becomes a secret read from the cluster.
func (c *converter) envVar(field, key, value string, hasValue bool) EnvVar {
	if !hasValue {
		c.note(field, "%s has no value (compose takes it from the host); it becomes secret: true, read from the cluster", key)
		return EnvVar{Key: key, Secret: true}
	}
	return EnvVar{Key: key, Value: Scalar(value)}
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// DNSLabel makes a DNS label of a name: lower-cased, runs of other characters
// turned into '-', at most 63 characters.
func DNSLabel(s string) string { return dnsName(s) }

func dnsName(s string) string {
	n := nonDNS.ReplaceAllString(strings.ToLower(s), "-")
	n = strings.Trim(n, "-")
	if len(n) > 63 {
		n = strings.Trim(n[:63], "-")
	}
	if n == "" {
		n = "x"
	}
	return n
}

// shellWords splits a command line the way a POSIX shell splits words,
// honouring single quotes, double quotes and backslashes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				cur.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated quote in %q", s)
			}
			i = j
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
